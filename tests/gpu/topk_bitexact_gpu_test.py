"""The GPU top-k ops are bit-identical to the CPU ops: every score the GPU
returns is the CPU kernel's canonical float32 dot product (the tensor-core and
CUDA-core scans only screen; RescoreKernel computes the key), so scores,
indices and counts are equal, ties and filters included, for every item type,
width and batch size (one or several 64-query groups and block rows)."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import ops


def _case(n, d, b, seed):
  rng = np.random.default_rng(seed)
  items = rng.normal(size=(n, d)).astype(np.float32)
  items[10:30] = items[3]                    # exact ties
  items[40] = np.nan                         # ranks as -inf
  queries = rng.normal(size=(b, d)).astype(np.float32)
  queries[0] = items[3]
  if b > 2:
    queries[2] = 0.0                         # every score ties at 0
  rates = np.array([1.0, 0.3, 0.01, 0.0, 0.5])[np.arange(b) % 5]
  passes = rng.random((b, n)) < rates[:, None]
  words = (n + 31) // 32
  padded = np.zeros((b, words * 32), bool)
  padded[:, :n] = passes
  weights = np.uint64(1) << np.arange(32, dtype=np.uint64)   # bit j = item 32 w + j
  mask = (padded.reshape(b, words, 32) * weights).sum(2).astype(np.uint32).view(np.int32)
  return items, queries, mask, passes


def _run(device, queries, items, mask, k):
  with tf.device(device):
    a = ops.masked_top_k(queries, items, mask, k)
    b = ops.prefilter_top_k(queries, items, mask, k)
    c = ops.prefilter_top_k(queries, items, mask, k, max_union_rate=1.0)
    return [t.numpy() for t in (*a, *b, *c)]


@pytest.mark.parametrize("dtype", [tf.float16, tf.float32, tf.bfloat16])
@pytest.mark.parametrize("d", [64, 128, 256, 48, 512])
def test_gpu_top_k_is_bit_identical_to_cpu(dtype, d):
  for b, k in ((1, 100), (7, 1), (70, 300), (256, 50)):
    items, queries, mask, passes = _case(20011, d, b, seed=d + b)
    items_t = tf.cast(tf.constant(items), dtype)
    cpu = _run("/CPU:0", queries, items_t, mask, k)
    gpu = _run("/GPU:0", queries, items_t, mask, k)
    for name, c, g in zip(["scores", "indices", "count"] * 3, cpu, gpu):
      np.testing.assert_array_equal(c, g, err_msg=f"{name}: B={b} k={k} d={d} {dtype.name}")
    # The mask decides: every returned index passes, count = min(k, passing).
    scores, indices, count = gpu[:3]
    np.testing.assert_array_equal(count, np.minimum(k, passes.sum(1)))
    for q in range(b):
      assert passes[q, indices[q, :count[q]]].all()
