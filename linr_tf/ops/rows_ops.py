"""Consistent reads and atomic row writes over several index variables.

    ids, attributes, vectors = read_rows([index.ids, index.attributes, index.vectors])
    write_rows([index.ids, index.attributes], rows, [new_ids, new_bits], min_rows=n)

`read_rows` (op LinrReadRows) takes the variables' locks together, so a
search never sees half of a `write_rows` (op LinrWriteRows): no torn rows. The
outputs alias the variables' buffers; a write copies a buffer first while a
reader still holds it. Unlike `tf.gather` / `scatter_update` on a variable,
neither op switches the variable to TensorFlow's copy-on-read mode (after which
every plain read copies the whole variable), so read the index's variables
through `read_rows` and write them through `write_rows` only.
"""

from typing import List, Sequence

import tensorflow as tf

from linr_tf.ops import _library

tf.no_gradient("LinrReadRows")
tf.no_gradient("LinrWriteRows")


def _op_device(variables) -> str:
  """Where the op runs: the device of the first non-string variable (the index
  keeps its numeric stores together, e.g. in GPU memory), else of the first.

  String variables (ids) may live on another device (TensorFlow keeps strings
  in host memory): the GPU kernels read them there. The GPU build exempts the
  ops from colocation with their resource inputs, so they must be placed here.
  """
  for v in variables:
    if v.dtype != tf.string:
      return v.device or ""
  return variables[0].device or ""


def read_rows(variables: Sequence[tf.Variable], name=None) -> List[tf.Tensor]:
  """Values of `variables`, read as one consistent snapshot."""
  variables = list(variables)
  with tf.device(_op_device(variables)):
    out = _library.load_library().linr_read_rows(
        resources=[v.handle for v in variables],
        dtypes=[v.dtype for v in variables], name=name)
  for value, var in zip(out, variables):
    value.set_shape(var.shape)
  return list(out)


def write_rows(variables: Sequence[tf.Variable], rows, values, min_rows,
               max_wait_us: int = 50000, name=None) -> tf.Tensor:
  """Writes `values[i]` into rows `rows` of `variables[i]`, for all i at once.

  Args:
    variables: resource variables with the same number of rows R.
    rows: int64 [M] distinct row indices.
    values: values[i] is [M] + row shape of variables[i].
    min_rows: int64 scalar; the variables grow to max(min_rows, 2 R) rows
      first when min_rows > R (new rows zero / "").
    max_wait_us: how long to wait for in-flight readers before copying a
      buffer they still hold (copy-on-write) instead of writing in place.

  Returns:
    int64 scalar, the number of rows after the write.
  """
  variables = list(variables)
  values = [tf.convert_to_tensor(v, var.dtype) for v, var in zip(values, variables)]
  rows, min_rows = tf.cast(rows, tf.int64), tf.cast(min_rows, tf.int64)
  with tf.device(_op_device(variables)):
    return _library.load_library().linr_write_rows(
        resources=[v.handle for v in variables], rows=rows, values=values,
        min_rows=min_rows, max_wait_us=int(max_wait_us), name=name)
