"""Where TensorFlow places int32 / float16 index variables and the LiNR ops
inside a tf.function on the GPU (run metadata), and what each costs."""
import time

import numpy as np

import linr_tf  # noqa: F401
import tensorflow as tf
from tensorflow.python.eager import context

from linr_tf import ops
from linr_tf.attributes import AttributeSchema, compile_filters

for g in tf.config.list_physical_devices("GPU"):
  tf.config.experimental.set_memory_growth(g, True)
print("library", ops.load_library())
n, d = 2_000_000, 128
rng = np.random.default_rng(0)
langs = rng.choice(["en", "de", "fr"], n)
schema = AttributeSchema.from_columns({"lang": langs})
with tf.device("/GPU:0"):
  bits = tf.Variable(schema.encode({"lang": langs}))
  ubits = tf.Variable(tf.bitcast(schema.encode({"lang": langs}), tf.uint32))
  vec = tf.Variable(tf.cast(tf.random.normal([n, d]), tf.float16))
  keys = tf.constant(schema.keys)
print("int32 var", bits.device, "| uint32 var", ubits.device, "| fp16 var", vec.device)


@tf.function
def search(q, f):
  program = compile_filters(f, keys)
  mask, count = ops.filter_mask(bits, program)
  return ops.masked_top_k(q, vec, mask, 100)


q = tf.constant(rng.normal(size=(16, d)).astype(np.float32))
f = tf.constant(['lang = "en"'] * 16)
for _ in range(3):
  [t.numpy() for t in search(q, f)]
context.enable_run_metadata()
[t.numpy() for t in search(q, f)]
md = context.export_run_metadata()
context.disable_run_metadata()
for fg in md.function_graphs:
  for g in fg.partition_graphs:
    for node in g.node:
      if node.op.startswith("Linr") or "Variable" in node.op or node.op in ("_Send", "_Recv", "_HostSend", "_HostRecv"):
        print("placed", node.op, node.name[:40], node.device)
t0 = time.perf_counter()
for _ in range(20):
  [t.numpy() for t in search(q, f)]
print("function B=16 N=2M: %.3f ms" % ((time.perf_counter() - t0) / 20 * 1e3))
with tf.device("/GPU:0"):
  program = compile_filters(f, keys)
  for _ in range(3):
    m = ops.filter_mask(bits, program)
    m.mask.numpy()
  t0 = time.perf_counter()
  for _ in range(20):
    m = ops.filter_mask(bits, program)
    m.mask.numpy()
  print("eager filter_mask: %.3f ms, mask on %s" % ((time.perf_counter() - t0) / 20 * 1e3, m.mask.device))
