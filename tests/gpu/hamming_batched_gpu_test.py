"""LinrHammingTopK's batched GPU scan on tensor cores (B >= 16, Wc in {2, 4, 8};
custom_ops/quantization/hamming_gpu.cu.h, ScanMmaKernel) equals a numpy brute
force and the CPU op bit for bit, inside TensorFlow, for each scan kernel
($LINR_HAMMING_MMA = b1 / i8 / off): B = 8 / 16 / 64 / 70 / 256 (a partial
m-tile, a partial second query group, four groups), pass rates 100 % / 10 % /
0.1 % / 0 % in one batch, massive ties, queries equal to items, k up to 4096,
k > N, no mask, N not a multiple of 32 and several selection segments. Run by
tests/gpu/run.sh on the GPU machine."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import ops

MMA_ENV = "LINR_HAMMING_MMA"
VARIANTS = ["b1", "i8", "off"]


def _codes(rng, rows, words, ties=False):
  if ties:  # four base codes with a few flipped bits: few distinct scores
    pool = rng.integers(0, 2**32, (4, words), dtype=np.uint64).astype(np.uint32)
    flips = rng.integers(0, 4, (rows, words)).astype(np.uint32)
    codes = pool[rng.integers(0, 4, rows)] ^ (flips & 1)
  else:
    codes = rng.integers(0, 2**32, (rows, words), dtype=np.uint64).astype(np.uint32)
  return codes.view(np.int32)


def _passes(rng, b_size, n, rates):
  r = np.array([rates[i % len(rates)] for i in range(b_size)])[:, None]
  return rng.random((b_size, n)) < r


def _pack(passes):
  b_size, n = passes.shape
  m = (n + 31) // 32
  bits = np.zeros((b_size, m * 32), bool)
  bits[:, :n] = passes
  return np.packbits(bits.reshape(b_size, m, 4, 8), axis=-1,
                     bitorder="little").reshape(b_size, m * 4).view("<u4").view(np.int32)


def _reference(queries, items, passes, k):
  """numpy brute force: matching bits, score descending then index ascending."""
  q = queries.view(np.uint32)
  c = items.view(np.uint32)
  b_size, n = q.shape[0], c.shape[0]
  bits = 32 * q.shape[1]
  scores = np.full((b_size, k), -np.inf, np.float32)
  idx = np.full((b_size, k), -1, np.int32)
  count = np.zeros(b_size, np.int32)
  for r in range(b_size):
    x = np.bitwise_xor(c, q[r])
    dist = np.unpackbits(x.view(np.uint8), axis=1).sum(1)
    s = bits - dist.astype(np.int64)
    ok = np.nonzero(passes[r])[0]
    order = ok[np.lexsort((ok, -s[ok]))][:k]
    count[r] = len(order)
    scores[r, :len(order)] = s[order]
    idx[r, :len(order)] = order
  return scores, idx, count


def _on(device, queries, items, mask, k):
  with tf.device(device):
    m = None if mask is None else tf.constant(mask)
    return [t.numpy() for t in ops.hamming_top_k(tf.constant(queries), tf.constant(items), m, k)]


def _same(a, b, what):
  for name, x, y in zip(("scores", "indices", "count"), a, b):
    np.testing.assert_array_equal(x, y, err_msg=f"{what}: {name}")


@pytest.fixture(params=VARIANTS)
def variant(request, monkeypatch):
  monkeypatch.setenv(MMA_ENV, request.param)
  return request.param


@pytest.mark.parametrize("words", [2, 4, 8])
@pytest.mark.parametrize("b_size,k", [(8, 100), (16, 1), (64, 100), (70, 1000), (256, 50)])
def test_batched_gpu_equals_reference_and_cpu(variant, words, b_size, k):
  rng = np.random.default_rng(1000 * words + b_size)
  n = 9_973
  ties = (words + b_size) % 2 == 0
  items = _codes(rng, n, words, ties)
  queries = _codes(rng, b_size, words, ties)
  queries[: min(4, b_size)] = items[[5, 77, 5, 9_000]][: min(4, b_size)]  # exact matches
  passes = _passes(rng, b_size, n, [1.0, 0.1, 0.001, 0.0, 0.5])
  mask = _pack(passes)
  want = _reference(queries, items, passes, k)
  gpu = _on("/GPU:0", queries, items, mask, k)
  _same(gpu, want, f"GPU [{variant}] vs numpy, Wc={words} B={b_size} k={k}")
  _same(gpu, _on("/CPU:0", queries, items, mask, k), f"GPU [{variant}] vs CPU op")


@pytest.mark.parametrize("words", [2, 4, 8])
def test_large_k_many_segments_and_no_mask(variant, words):
  rng = np.random.default_rng(7 + words)
  n = 200_003  # several selection segments at k = 4096 (candidate buffers of 65536)
  items = _codes(rng, n, words)
  queries = _codes(rng, 64, words)
  passes = _passes(rng, 64, n, [1.0, 0.1, 0.01, 0.0])
  mask = _pack(passes)
  for k in (4096, 100):
    want = _reference(queries, items, passes, k)
    _same(_on("/GPU:0", queries, items, mask, k), want, f"[{variant}] Wc={words} k={k}")
  # No mask: every item passes.
  k = 300
  want = _reference(queries[:9], items, np.ones((9, n), bool), k)
  _same(_on("/GPU:0", queries[:9], items, None, k), want, f"[{variant}] no mask Wc={words}")


def test_k_above_n_and_tiny_n(variant):
  rng = np.random.default_rng(3)
  for n in (1, 31, 33, 257):
    items = _codes(rng, n, 4)
    queries = _codes(rng, 16, 4)
    passes = _passes(rng, 16, n, [1.0, 0.5, 0.0])
    mask = _pack(passes)
    mask[:, -1] |= np.int32(-2**31) if n % 32 else 0   # bits past N must be ignored
    want = _reference(queries, items, passes, 100)
    _same(_on("/GPU:0", queries, items, mask, 100), want, f"[{variant}] N={n} k=100 > N")


def test_variants_agree_on_all_equal_codes(monkeypatch):
  """Every item identical: all scores tie, the result is the first k passing
  indices of each query, whichever kernel runs."""
  rng = np.random.default_rng(5)
  n = 70_000
  items = np.repeat(_codes(rng, 1, 4), n, axis=0)
  queries = _codes(rng, 64, 4)
  passes = _passes(rng, 64, n, [1.0, 0.1, 0.001, 0.0])
  mask = _pack(passes)
  want = _reference(queries, items, passes, 1000)
  for v in VARIANTS:
    monkeypatch.setenv(MMA_ENV, v)
    _same(_on("/GPU:0", queries, items, mask, 1000), want, f"[{v}] all codes equal")
