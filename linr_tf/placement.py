"""Where the host-side work of a signature runs.

`HOST`: the request checks (shapes, `k` bounds, finite queries) and filter
compilation. They run where the request is, in host memory: on a GPU
machine a check placed on the GPU would copy its verdict back and stall the
call.

    with tf.device(placement.HOST):
      checks.append(tf.debugging.assert_positive(k, message="k must be > 0"))
"""

HOST = "/device:CPU:0"
