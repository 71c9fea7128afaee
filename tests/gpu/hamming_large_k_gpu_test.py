"""LinrHammingTopK's GPU counting path (very large k,
custom_ops/quantization/hamming_large_k_gpu.cu.h) equals the CPU op bit for
bit, inside TensorFlow: k > 16384 (the default switch), k > N, pass rates
100 % / 10 % / 0 %, massive ties, B = 1 and 3 (and 64), vector widths Wc in
{1, 2, 4, 8, 16}, generic widths (3, 32, 64: the last needs > 48 KiB of shared
memory), many ranges (> 8192, the prefix kernel's multi-tile carry), and the
counting path forced for small k ($LINR_HAMMING_TOPK_SELECT=counting) against
the GPU buffer path. Run by tests/gpu/run.sh on the GPU machine."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import ops

SELECT_ENV = "LINR_HAMMING_TOPK_SELECT"


def _codes(rng, rows, words, ties=False):
  if ties:  # four base codes with a few flipped low bits: few distinct scores
    pool = rng.integers(0, 2**32, (4, words), dtype=np.uint64).astype(np.uint32)
    flips = rng.integers(0, 4, (rows, words)).astype(np.uint32)
    codes = pool[rng.integers(0, 4, rows)] ^ (flips & 1)
  else:
    codes = rng.integers(0, 2**32, (rows, words), dtype=np.uint64).astype(np.uint32)
  return codes.view(np.int32)


def _mask(rng, b_size, n, rates):
  """int32 [B, ceil(N/32)]: row b passes each item with rates[b % len]."""
  m = (n + 31) // 32
  r = np.array([rates[i % len(rates)] for i in range(b_size)])[:, None]
  bits = rng.random((b_size, m * 32)) < r
  return np.packbits(bits.reshape(b_size, m, 4, 8), axis=-1,
                     bitorder="little").reshape(b_size, m * 4).view("<u4").view(np.int32)


def _on(device, queries, items, mask, k):
  with tf.device(device):
    q, c = tf.constant(queries), tf.constant(items)
    m = None if mask is None else tf.constant(mask)
    return [t.numpy() for t in ops.hamming_top_k(q, c, m, k)]


def _same(a, b, what):
  for name, x, y in zip(("scores", "indices", "count"), a, b):
    np.testing.assert_array_equal(x, y, err_msg=f"{what}: {name}")


@pytest.fixture
def select(monkeypatch):
  def use(name):
    if name is None:
      monkeypatch.delenv(SELECT_ENV, raising=False)
    else:
      monkeypatch.setenv(SELECT_ENV, name)
  use(None)
  return use


@pytest.mark.parametrize("words", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("b_size", [1, 3])
def test_large_k_gpu_equals_cpu(words, b_size, select):
  rng = np.random.default_rng(10 * words + b_size)
  n = 200_003
  ties = words in (2, 8)
  queries, items = _codes(rng, b_size, words, ties), _codes(rng, n, words, ties)
  mask = _mask(rng, b_size, n, [1.0, 0.1, 0.0])
  for k in (20_000, 250_000):                 # 250k > N: padding
    cpu = _on("/CPU:0", queries, items, mask, k)
    gpu = _on("/GPU:0", queries, items, mask, k)
    _same(cpu, gpu, f"Wc={words} B={b_size} k={k}")
    assert gpu[2][0] == min(k, n)
    if b_size == 3:
      assert gpu[2][2] == 0                   # nothing passes
      assert np.all(gpu[1][2] == -1) and np.all(np.isneginf(gpu[0][2]))


@pytest.mark.parametrize("k", [1, 100, 5000, 16384])
@pytest.mark.parametrize("words", [1, 2, 4, 5])
def test_counting_forced_equals_gpu_buffer_path(k, words, select):
  rng = np.random.default_rng(k + words)
  queries, items = _codes(rng, 4, words, k % 2 == 0), _codes(rng, 100_001, words, k % 2 == 0)
  mask = _mask(rng, 4, 100_001, [1.0, 0.1, 0.001, 0.0])
  buffer = _on("/GPU:0", queries, items, mask, k)     # default: buffer path
  select("counting")
  counting = _on("/GPU:0", queries, items, mask, k)
  cpu = _on("/CPU:0", queries, items, mask, k)
  _same(buffer, counting, f"GPU buffer vs counting k={k} Wc={words}")
  _same(cpu, counting, f"CPU vs GPU counting k={k} Wc={words}")


def test_all_scores_tie_and_no_mask(select):
  rng = np.random.default_rng(3)
  items = np.tile(_codes(rng, 1, 2), (300_000, 1))
  queries = _codes(rng, 2, 2)
  for mask in (None, _mask(rng, 2, 300_000, [1.0, 0.3])):
    cpu = _on("/CPU:0", queries, items, mask, 100_000)
    gpu = _on("/GPU:0", queries, items, mask, 100_000)
    _same(cpu, gpu, "all codes identical")
  np.testing.assert_array_equal(gpu[1][0], np.arange(100_000))  # mask row 0: all pass


def test_many_ranges_and_large_k(select):
  # 20M items: > 8192 ranges of 2048 items (the prefix kernel carries across
  # tiles); k = 1M, one query, 100 % and 10 % pass.
  rng = np.random.default_rng(4)
  n = 20_000_000
  items = _codes(rng, n, 1)
  queries = _codes(rng, 2, 1)
  mask = _mask(rng, 2, n, [1.0, 0.1])
  cpu = _on("/CPU:0", queries, items, mask, 1_000_000)
  gpu = _on("/GPU:0", queries, items, mask, 1_000_000)
  _same(cpu, gpu, "N=20M k=1M")


@pytest.mark.parametrize("words", [32, 64])
def test_wide_generic_codes(words, select):
  # Generic width; Wc = 64 needs 8 x 2049 x 4 = 64 KiB of shared memory.
  rng = np.random.default_rng(words)
  queries, items = _codes(rng, 2, words), _codes(rng, 40_000, words)
  mask = _mask(rng, 2, 40_000, [1.0, 0.5])
  _same(_on("/CPU:0", queries, items, mask, 30_000), _on("/GPU:0", queries, items, mask, 30_000),
        f"Wc={words}")


def test_batch_64_wide_bins(select):
  # B * bins large: fewer ranges per query (the counts stay <= 2^26 cells).
  rng = np.random.default_rng(6)
  queries, items = _codes(rng, 64, 16), _codes(rng, 60_000, 16)
  mask = _mask(rng, 64, 60_000, [1.0, 0.1, 0.01, 0.0])
  _same(_on("/CPU:0", queries, items, mask, 20_000), _on("/GPU:0", queries, items, mask, 20_000),
        "B=64 Wc=16")


def test_gpu_limits_are_clear_errors(select):
  rng = np.random.default_rng(7)
  items = _codes(rng, 20_000, 65)
  with pytest.raises(tf.errors.UnimplementedError, match="at most 64 words"):
    _on("/GPU:0", items[:1], items, None, 17_000)
  with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 2147483648"):
    _on("/GPU:0", items[:3, :2], items[:, :2], None, 2**30)
