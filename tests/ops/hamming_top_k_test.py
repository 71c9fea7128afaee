"""LinrHammingTopK against an independent numpy brute-force Hamming top-k."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from linr_tf import ops  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, database=None)


# ----------------------------------------------------------------- reference
def pack_mask(passes):
  """[B, N] bool -> int32 [B, ceil(N / 32)] (bit i % 32 of word i // 32)."""
  b_size, n = passes.shape
  m = -(-n // 32)
  padded = np.zeros((b_size, m * 32), bool)
  padded[:, :n] = passes
  return np.packbits(padded.reshape(b_size, m, 4, 8), axis=-1,
                     bitorder="little").reshape(b_size, m * 4).view("<u4").view(np.int32)


def matching_bits_np(query_codes, item_codes):
  """[B, N] matching bits of int32 codes, by unpacking every bit."""
  qb = np.unpackbits(query_codes.view(np.uint8), axis=1)
  ib = np.unpackbits(item_codes.view(np.uint8), axis=1)
  return (qb[:, None, :] == ib[None, :, :]).sum(-1)


def hamming_top_k_np(query_codes, item_codes, passes, k):
  b_size = query_codes.shape[0]
  scores = np.full((b_size, k), -np.inf, np.float32)
  indices = np.full((b_size, k), -1, np.int64)
  count = np.zeros(b_size, np.int64)
  all_scores = matching_bits_np(query_codes, item_codes)
  for b in range(b_size):
    pos = np.flatnonzero(passes[b])
    order = np.lexsort((pos, -all_scores[b, pos]))[:k]
    count[b] = len(order)
    scores[b, :len(order)] = all_scores[b, pos[order]]
    indices[b, :len(order)] = pos[order]
  return scores, indices, count


def random_codes(rng, rows, words, few_values):
  if few_values:  # codes from a tiny pool: many exact ties and duplicates
    pool = rng.integers(0, 2**32, (4, words), dtype=np.uint64).astype(np.uint32)
    flips = rng.integers(0, 3, (rows, words))
    codes = pool[rng.integers(0, 4, rows)] ^ (flips == 0).astype(np.uint32)
  else:
    codes = rng.integers(0, 2**32, (rows, words), dtype=np.uint64).astype(np.uint32)
  return codes.view(np.int32)


def run(query_codes, item_codes, mask, k):
  s, i, c = ops.hamming_top_k(query_codes, item_codes, mask, k)
  return s.numpy(), i.numpy(), c.numpy()


def check(query_codes, item_codes, passes, k):
  got = run(query_codes, item_codes, pack_mask(passes), k)
  want = hamming_top_k_np(query_codes, item_codes, passes, k)
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)
  assert got[0].dtype == np.float32 and got[1].dtype == np.int32 and got[2].dtype == np.int32


# --------------------------------------------------------------------- tests
@SETTINGS
@given(b_size=st.integers(0, 7), n=st.integers(0, 300),
       words=st.sampled_from([1, 2, 3, 4, 8, 16, 32]),
       pass_rate=st.sampled_from([0.0, 0.02, 0.3, 1.0]), k=st.integers(1, 60),
       few_values=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_matches_numpy(b_size, n, words, pass_rate, k, few_values, seed):
  rng = np.random.default_rng(seed)
  queries = random_codes(rng, b_size, words, few_values)
  items = random_codes(rng, n, words, few_values)
  passes = rng.random((b_size, n)) < pass_rate
  check(queries, items, passes, k)


@pytest.mark.parametrize("k", [1, 7, 100, 3000])
@pytest.mark.parametrize("words", [4, 5])
def test_large_n_many_shards_with_ties(k, words):
  # N spans several shards and chunks; few distinct codes give many exact
  # ties, small k forces many buffer compactions.
  rng = np.random.default_rng(k + words)
  queries = random_codes(rng, 6, words, True)
  items = random_codes(rng, 50000, words, True)
  passes = rng.random((6, 50000)) < 0.5
  passes[2] = rng.random(50000) < 0.001
  passes[4] = True
  check(queries, items, passes, k)


@pytest.mark.parametrize("words", [2, 3, 4, 32])
def test_portable_path_identical(words, monkeypatch):
  rng = np.random.default_rng(words)
  queries = random_codes(rng, 3, words, False)
  items = random_codes(rng, 5000, words, False)
  mask = pack_mask(rng.random((3, 5000)) < 0.6)
  monkeypatch.delenv("LINR_CPU_ISA", raising=False)
  fast = run(queries, items, mask, 40)
  monkeypatch.setenv("LINR_CPU_ISA", "portable")
  portable = run(queries, items, mask, 40)
  for a, b in zip(fast, portable):
    np.testing.assert_array_equal(a, b)


def test_identical_codes_tie_by_index():
  items = np.tile(np.int32([[5, -1, 7, 0]]), (200, 1))
  queries = np.int32([[5, -1, 7, 0], [0, 0, 0, 0]])
  scores, indices, count = run(queries, items, None, 10)
  np.testing.assert_array_equal(indices, np.tile(np.arange(10), (2, 1)))
  np.testing.assert_array_equal(scores[0], np.full(10, 128.0))
  np.testing.assert_array_equal(count, [10, 10])


def test_extreme_scores():
  # All bits equal (score m) and all bits different (score 0), incl. bit 31.
  items = np.int32([[0, 0], [-1, -1], [np.iinfo(np.int32).min, 0]])
  queries = np.int32([[-1, -1]])
  scores, indices, _ = run(queries, items, None, 3)
  np.testing.assert_array_equal(indices[0], [1, 2, 0])
  np.testing.assert_array_equal(scores[0], [64.0, 1.0, 0.0])


def test_k_exceeds_passing_and_n():
  rng = np.random.default_rng(3)
  queries = random_codes(rng, 3, 2, False)
  items = random_codes(rng, 10, 2, False)
  passes = np.zeros((3, 10), bool)
  passes[0, [1, 4, 6]] = True
  passes[1] = True
  scores, indices, count = run(queries, items, pack_mask(passes), 15)
  np.testing.assert_array_equal(count, [3, 10, 0])
  assert set(indices[0, :3]) == {1, 4, 6}
  np.testing.assert_array_equal(indices[0, 3:], [-1] * 12)
  assert np.all(np.isneginf(scores[0, 3:]))
  np.testing.assert_array_equal(np.sort(indices[1, :10]), np.arange(10))
  np.testing.assert_array_equal(indices[2], [-1] * 15)
  check(queries, items, passes, 15)


def test_bits_past_n_are_ignored():
  queries = np.zeros((1, 1), np.int32)
  items = np.zeros((5, 1), np.int32)
  mask = np.int32([[-1]])                       # bits 5..31 set but N = 5
  scores, indices, count = run(queries, items, mask, 8)
  assert count[0] == 5
  np.testing.assert_array_equal(indices[0], [0, 1, 2, 3, 4, -1, -1, -1])


def test_with_filter_mask():
  # Mask straight from LinrFilterMask (color=red / NOT color=red).
  rng = np.random.default_rng(9)
  n = 1000
  red = rng.random(n) < 0.3
  item_bits = np.where(red, 1, 2).astype(np.int32)[:, None]        # bits 0, 1
  program = ops.compile_filter(["color = red", "NOT color = red"],
                               ["color=red", "color=blue"])
  mask, _ = ops.filter_mask(item_bits, program)
  queries = random_codes(rng, 2, 4, False)
  items = random_codes(rng, n, 4, False)
  got = run(queries, items, mask, 25)
  want = hamming_top_k_np(queries, items, np.stack([red, ~red]), 25)
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)


def test_empty_inputs():
  s, i, c = run(np.zeros((0, 2), np.int32), np.zeros((10, 2), np.int32),
                np.zeros((0, 1), np.int32), 4)
  assert s.shape == (0, 4) and i.shape == (0, 4) and c.shape == (0,)
  s, i, c = run(np.zeros((2, 2), np.int32), np.zeros((0, 2), np.int32),
                np.zeros((2, 0), np.int32), 3)
  np.testing.assert_array_equal(i, -np.ones((2, 3)))
  np.testing.assert_array_equal(c, [0, 0])


@pytest.mark.parametrize("args,pattern", [
    ((np.zeros((2, 4), np.int32), np.zeros((10, 2), np.int32), np.zeros((2, 1), np.int32), 3),
     "code width mismatch"),
    ((np.zeros((2, 4), np.int32), np.zeros((10, 4), np.int32), np.zeros((3, 1), np.int32), 3),
     "batch size B mismatch"),
    ((np.zeros((2, 4), np.int32), np.zeros((40, 4), np.int32), np.zeros((2, 1), np.int32), 3),
     "mask words M mismatch"),
    ((np.zeros((2, 4), np.int32), np.zeros((10, 4), np.int32), np.zeros((2, 1), np.int32), 0),
     "k must be positive"),
    ((np.zeros((4,), np.int32), np.zeros((10, 4), np.int32), np.zeros((2, 1), np.int32), 3),
     "must have rank 2"),
])
def test_bad_inputs(args, pattern):
  with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=pattern):
    run(*args)


def test_bad_inputs_in_graph_with_unknown_shapes():
  fn = tf.function(lambda q, x, m, k: ops.hamming_top_k(q, x, m, k),
                   input_signature=[tf.TensorSpec([None, None], tf.int32)] * 3
                   + [tf.TensorSpec([], tf.int32)])
  with pytest.raises(tf.errors.InvalidArgumentError, match="code width mismatch"):
    fn(np.zeros((2, 4), np.int32), np.zeros((10, 2), np.int32), np.zeros((2, 1), np.int32), 3)
  with pytest.raises(tf.errors.InvalidArgumentError, match="k must be positive"):
    fn(np.zeros((2, 4), np.int32), np.zeros((10, 4), np.int32), np.zeros((2, 1), np.int32), -1)
