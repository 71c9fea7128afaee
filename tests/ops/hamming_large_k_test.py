"""LinrHammingTopK with very large k (the counting path of
custom_ops/quantization/hamming_large_k_cpu.h) against a numpy brute force,
and against the candidate-buffer path ($LINR_HAMMING_TOPK_SELECT forces
either path; both must give the same outputs for every k)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import ops  # noqa: E402
from linr_tf.ops import hamming_ops  # noqa: E402

SELECT_ENV = "LINR_HAMMING_TOPK_SELECT"
CROSSOVER_K = 4096          # the CPU runs counting above this min(k, N) by default
BUFFER_MAX_K = 16384        # the GPU buffer path's limit
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.int64)


# ----------------------------------------------------------------- reference
def pack_mask(passes):
  """[B, N] bool -> int32 [B, ceil(N / 32)] (bit i % 32 of word i // 32)."""
  b_size, n = passes.shape
  m = -(-n // 32)
  padded = np.zeros((b_size, m * 32), bool)
  padded[:, :n] = passes
  return np.packbits(padded.reshape(b_size, m, 4, 8), axis=-1,
                     bitorder="little").reshape(b_size, m * 4).view("<u4").view(np.int32)


def matching_bits(query, items):
  """[N] matching bits of one int32 query code against int32 item codes."""
  x = (items.view(np.uint8) ^ query.view(np.uint8)[None, :])
  return 32 * items.shape[1] - _POPCOUNT[x].sum(1)


def reference(queries, items, passes, k):
  """Scores desc, ties by smaller index; count = min(k, passing); -inf / -1."""
  b_size = queries.shape[0]
  scores = np.full((b_size, k), -np.inf, np.float32)
  indices = np.full((b_size, k), -1, np.int32)
  count = np.zeros(b_size, np.int32)
  for b in range(b_size):
    pos = np.flatnonzero(passes[b])
    s = matching_bits(queries[b], items[pos])
    order = np.lexsort((pos, -s))[:k]
    count[b] = len(order)
    scores[b, :len(order)] = s[order]
    indices[b, :len(order)] = pos[order]
  return scores, indices, count


def random_codes(rng, rows, words, ties):
  if ties:  # four base codes with a few flipped low bits: few distinct scores
    pool = rng.integers(0, 2**32, (4, words), dtype=np.uint64).astype(np.uint32)
    flips = rng.integers(0, 4, (rows, words)).astype(np.uint32)
    codes = pool[rng.integers(0, 4, rows)] ^ (flips & 1)
  else:
    codes = rng.integers(0, 2**32, (rows, words), dtype=np.uint64).astype(np.uint32)
  return codes.view(np.int32)


def pass_rows(rng, b_size, n, rates):
  r = np.array([rates[i % len(rates)] for i in range(b_size)])[:, None]
  return rng.random((b_size, n)) < r


def run(queries, items, mask, k):
  s, i, c = ops.hamming_top_k(queries, items, mask, k)
  return s.numpy(), i.numpy(), c.numpy()


def assert_same(got, want):
  for name, g, w in zip(("scores", "indices", "count"), got, want):
    np.testing.assert_array_equal(g, w, err_msg=name)
  assert got[0].dtype == np.float32 and got[1].dtype == np.int32
  assert got[2].dtype == np.int32


@pytest.fixture
def path(monkeypatch):
  """path("counting" | "buffer" | None): forces a selection path."""
  def use(name):
    if name is None:
      monkeypatch.delenv(SELECT_ENV, raising=False)
    else:
      monkeypatch.setenv(SELECT_ENV, name)
  use(None)
  return use


# --------------------------------------------------------------------- tests
@pytest.mark.parametrize("words", [1, 2, 4, 8])   # 8: scores recomputed, not cached
@pytest.mark.parametrize("b_size", [1, 3])
@pytest.mark.parametrize("ties", [False, True])
def test_large_k_matches_numpy(words, b_size, ties, path):
  # Default path (counting: k > 4096); rows pass 100 % / 10 % / 0 %, so the
  # 10 % row has fewer passing items than k (count + padding).
  rng = np.random.default_rng(100 * words + 10 * b_size + ties)
  n = 70001
  queries = random_codes(rng, b_size, words, ties)
  items = random_codes(rng, n, words, ties)
  passes = pass_rows(rng, b_size, n, [1.0, 0.1, 0.0])
  for k in (20000, 50000):
    assert_same(run(queries, items, pack_mask(passes), k),
                reference(queries, items, passes, k))


def test_k_above_n_and_above_passing(path):
  rng = np.random.default_rng(7)
  n = 17000
  queries = random_codes(rng, 3, 2, False)
  items = random_codes(rng, n, 2, False)
  passes = pass_rows(rng, 3, n, [1.0, 0.1, 0.0])
  k = 40000                         # > N: every passing item, then padding
  got = run(queries, items, pack_mask(passes), k)
  assert_same(got, reference(queries, items, passes, k))
  np.testing.assert_array_equal(got[2], passes.sum(1))
  assert np.all(got[1][0, n:] == -1) and np.all(np.isneginf(got[0][0, n:]))


@pytest.mark.parametrize("k", [CROSSOVER_K - 1, CROSSOVER_K, CROSSOVER_K + 1, BUFFER_MAX_K + 1])
def test_crossover(k, path):
  # Around the default crossover both paths are used and equal numpy.
  rng = np.random.default_rng(k)
  queries = random_codes(rng, 2, 1, True)
  items = random_codes(rng, 40000, 1, True)
  passes = pass_rows(rng, 2, 40000, [1.0, 0.6])
  assert_same(run(queries, items, pack_mask(passes), k),
              reference(queries, items, passes, k))


@pytest.mark.parametrize("k", [1, 10, 777, 5000, BUFFER_MAX_K])
@pytest.mark.parametrize("words", [1, 2, 3, 4, 8, 16])
def test_counting_equals_buffer_for_small_k(k, words, path):
  # The same total order: forcing the counting path for k <= 16384 gives
  # exactly the buffer path's outputs (ties from few distinct codes, mixed
  # pass rates, a row with nothing passing).
  rng = np.random.default_rng(k * 31 + words)
  queries = random_codes(rng, 4, words, k % 2 == 1)
  items = random_codes(rng, 30011, words, k % 2 == 1)
  mask = pack_mask(pass_rows(rng, 4, 30011, [1.0, 0.1, 0.003, 0.0]))
  path("buffer")
  buffer = run(queries, items, mask, k)
  path("counting")
  counting = run(queries, items, mask, k)
  assert_same(counting, buffer)
  assert counting[2][3] == 0 and counting[2][0] == min(k, 30011)


def test_buffer_equals_counting_for_large_k(path):
  # On the CPU the buffer path takes any k too: both paths at k = 60000.
  rng = np.random.default_rng(3)
  queries = random_codes(rng, 3, 4, True)
  items = random_codes(rng, 90000, 4, True)
  mask = pack_mask(pass_rows(rng, 3, 90000, [1.0, 0.5, 0.1]))
  path("buffer")
  buffer = run(queries, items, mask, 60000)
  path("counting")
  assert_same(run(queries, items, mask, 60000), buffer)


def test_all_scores_tie(path):
  # Every code identical: one score, so the output is the first k passing
  # items by index (the threshold bin's quota).
  rng = np.random.default_rng(5)
  items = np.tile(random_codes(rng, 1, 2, False), (50000, 1))
  queries = random_codes(rng, 2, 2, False)
  passes = pass_rows(rng, 2, 50000, [1.0, 0.7])
  got = run(queries, items, pack_mask(passes), 30000)
  for b in range(2):
    np.testing.assert_array_equal(got[1][b], np.flatnonzero(passes[b])[:30000])
  assert_same(got, reference(queries, items, passes, 30000))


def test_portable_isa_identical(path, monkeypatch):
  rng = np.random.default_rng(9)
  queries = random_codes(rng, 2, 2, False)
  items = random_codes(rng, 40000, 2, False)
  mask = pack_mask(pass_rows(rng, 2, 40000, [1.0, 0.2]))
  fast = run(queries, items, mask, 25000)
  monkeypatch.setenv("LINR_CPU_ISA", "portable")
  assert_same(run(queries, items, mask, 25000), fast)


def test_no_mask_means_all_pass(path):
  rng = np.random.default_rng(11)
  queries = random_codes(rng, 1, 1, False)
  items = random_codes(rng, 30000, 1, False)
  got = run(queries, items, None, 20000)
  assert_same(got, reference(queries, items, np.ones((1, 30000), bool), 20000))


def test_k_beyond_the_output_limit_is_a_clear_error(path):
  # B * k must stay <= 2^31 output slots (16 GiB): checked before allocating.
  queries = np.zeros((3, 2), np.int32)
  items = np.zeros((10, 2), np.int32)
  k = 2**30                                   # 3 * 2^30 > 2^31
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"k=1073741824 with B=3 .*limit of 2147483648"):
    run(queries, items, None, k)


def test_k_beyond_int32_is_a_clear_error():
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"k=2147483648 .*2147483647"):
    ops.hamming_top_k(np.zeros((1, 1), np.int32), np.zeros((4, 1), np.int32), None, 2**31)
  assert hamming_ops.MAX_K == 2**31 - 1


@pytest.mark.parametrize("b_size,n,k", [(2, 0, 5), (0, 10, 5), (1, 1, 3), (2, 31, 40),
                                        (3, 33, 1), (2, 64, 64)])
def test_edge_sizes_counting_forced(b_size, n, k, path):
  path("counting")
  rng = np.random.default_rng(n + k)
  queries = random_codes(rng, b_size, 2, False)
  items = random_codes(rng, n, 2, False).reshape(n, 2)
  passes = pass_rows(rng, b_size, n, [1.0, 0.5])
  assert_same(run(queries, items, pack_mask(passes), k), reference(queries, items, passes, k))
