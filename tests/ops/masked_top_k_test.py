"""LinrMaskedTopK against an independent numpy brute force."""

import os
import re
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
def passes_np(item_bits, clauses, num_clauses):
  """[B, N] bool: item passes all of the query's first num_clauses clauses."""
  b_size, n = len(num_clauses), item_bits.shape[0]
  out = np.ones((b_size, n), bool)
  for b in range(b_size):
    for c in range(num_clauses[b]):
      out[b] &= np.any((item_bits & clauses[b, c][None, :]) != 0, axis=1)
  return out


def top_k_np(queries, items, item_bits, clauses, num_clauses, k):
  """(scores [B,k] float64, indices [B,k], count [B]) by brute force."""
  b_size = queries.shape[0]
  scores = np.full((b_size, k), -np.inf)
  indices = np.full((b_size, k), -1, np.int64)
  count = np.zeros(b_size, np.int64)
  all_scores = items.astype(np.float64) @ queries.astype(np.float64).T  # [N, B]
  mask = passes_np(item_bits, clauses, num_clauses)
  for b in range(b_size):
    pos = np.flatnonzero(mask[b])
    order = np.lexsort((pos, -all_scores[pos, b]))[:k]
    count[b] = len(order)
    scores[b, :len(order)] = all_scores[pos[order], b]
    indices[b, :len(order)] = pos[order]
  return scores, indices, count


def random_case(rng, b_size, n, d, num_bits, c_max, density, integer_valued):
  w = max(1, -(-num_bits // 32))
  if integer_valued:  # few distinct values: many exact ties
    queries = rng.integers(-2, 3, (b_size, d)).astype(np.float32)
    items = rng.integers(-2, 3, (n, d)).astype(np.float32)
  else:
    queries = rng.standard_normal((b_size, d)).astype(np.float32)
    items = rng.standard_normal((n, d)).astype(np.float32)
  bits = (rng.random((n, num_bits)) < density)
  clause_bits = rng.random((b_size, c_max, num_bits)) < 0.3
  num_clauses = rng.integers(0, c_max + 1, b_size).astype(np.int32)
  return (queries, items, pack_bits(bits, w), pack_bits(clause_bits, w),
          num_clauses)


def pack_bits(bool_bits, w):
  """[..., NB] bool -> [..., W] int32 (bit i -> word i // 32, bit i % 32)."""
  shape = bool_bits.shape[:-1]
  words = np.zeros(shape + (w,), np.uint32)
  for i in range(bool_bits.shape[-1]):
    words[..., i // 32] |= bool_bits[..., i].astype(np.uint32) << np.uint32(i % 32)
  return words.view(np.int32)


def run_op(queries, items, item_bits, clauses, num_clauses, k):
  s, i, c = ops.masked_top_k(queries, items, item_bits, clauses, num_clauses, k)
  return s.numpy(), i.numpy(), c.numpy()


def check_against_reference(case, k, exact):
  queries, items, item_bits, clauses, num_clauses = case
  scores, indices, count = run_op(*case, k)
  ref_scores, ref_indices, ref_count = top_k_np(*case, k)
  assert scores.shape == (queries.shape[0], k) and indices.shape == scores.shape
  np.testing.assert_array_equal(count, ref_count)
  if exact:
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))
    return
  # Float data: near-ties may order differently in float32, so check the
  # defining properties instead of exact indices.
  mask = passes_np(item_bits, clauses, num_clauses)
  all_scores = items.astype(np.float64) @ queries.astype(np.float64).T
  for b in range(queries.shape[0]):
    n_valid = count[b]
    got = indices[b, :n_valid]
    assert np.all(indices[b, n_valid:] == -1)
    assert np.all(np.isneginf(scores[b, n_valid:]))
    assert len(set(got.tolist())) == n_valid
    assert np.all(mask[b, got])
    np.testing.assert_allclose(scores[b, :n_valid], all_scores[got, b],
                               rtol=1e-5, atol=1e-4)
    assert np.all(np.diff(scores[b, :n_valid]) <= 0)
    rest = np.setdiff1d(np.flatnonzero(mask[b]), got)
    if n_valid and len(rest):
      assert all_scores[rest, b].max() <= scores[b, n_valid - 1] + 1e-4
    np.testing.assert_allclose(scores[b, :n_valid], ref_scores[b, :n_valid],
                               rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------- tests
@SETTINGS
@given(b_size=st.integers(0, 6), n=st.integers(0, 300), d=st.integers(1, 20),
       num_bits=st.integers(1, 70), c_max=st.integers(0, 3),
       density=st.sampled_from([0.05, 0.3, 0.8]), k=st.integers(1, 40),
       integer_valued=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_matches_numpy(b_size, n, d, num_bits, c_max, density, k,
                       integer_valued, seed):
  rng = np.random.default_rng(seed)
  case = random_case(rng, b_size, n, d, num_bits, c_max, density, integer_valued)
  check_against_reference(case, k, exact=integer_valued)


@pytest.mark.parametrize("k", [1, 7, 100, 5000])
def test_large_n_many_shards_with_ties(k):
  # N spans several item shards; integer data gives many exact ties, k=1 and
  # k=7 force many buffer compactions.
  rng = np.random.default_rng(k)
  case = random_case(rng, 9, 20000, 16, 40, 2, 0.5, integer_valued=True)
  check_against_reference(case, k, exact=True)


def test_duplicated_items_tie_by_index():
  rng = np.random.default_rng(1)
  base = rng.standard_normal((5, 8)).astype(np.float32)
  items = np.concatenate([base] * 40)          # item i == item i % 5
  queries = rng.standard_normal((3, 8)).astype(np.float32)
  bits = np.ones((len(items), 1), np.int32)
  clauses = np.zeros((3, 0, 1), np.int32)
  case = (queries, items, bits, clauses, np.zeros(3, np.int32))
  scores, indices, _ = run_op(*case, 12)
  best = np.argmax(base @ queries.T, axis=0)
  for b in range(3):
    # The best distinct item's 40 copies come first, in ascending index.
    np.testing.assert_array_equal(indices[b], best[b] + 5 * np.arange(12))
    assert np.all(scores[b] == scores[b, 0])


def test_k_exceeds_eligible_pads():
  rng = np.random.default_rng(2)
  queries = rng.standard_normal((2, 4)).astype(np.float32)
  items = rng.standard_normal((10, 4)).astype(np.float32)
  bits = np.zeros((10, 1), np.int32)
  bits[[1, 4, 6], 0] = 1
  clauses = np.array([[[1]], [[0]]], np.int32)
  scores, indices, count = run_op(queries, items, bits, clauses,
                                  np.array([1, 0], np.int32), 5)
  np.testing.assert_array_equal(count, [3, 5])
  assert set(indices[0, :3]) == {1, 4, 6}
  np.testing.assert_array_equal(indices[0, 3:], [-1, -1])
  assert np.all(np.isneginf(scores[0, 3:]))
  # k > N: everything passes for query 1 without filter.
  _, indices, count = run_op(queries, items, bits, clauses,
                             np.array([1, 0], np.int32), 15)
  np.testing.assert_array_equal(count, [3, 10])
  np.testing.assert_array_equal(np.sort(indices[1, :10]), np.arange(10))
  np.testing.assert_array_equal(indices[1, 10:], [-1] * 5)


def test_nothing_passes():
  rng = np.random.default_rng(3)
  case = (rng.standard_normal((2, 4)).astype(np.float32),
          rng.standard_normal((50, 4)).astype(np.float32),
          np.full((50, 2), -1, np.int32),
          np.zeros((2, 1, 2), np.int32),  # a clause without bits
          np.array([1, 1], np.int32))
  scores, indices, count = run_op(*case, 3)
  np.testing.assert_array_equal(count, [0, 0])
  np.testing.assert_array_equal(indices, -np.ones((2, 3)))
  assert np.all(np.isneginf(scores))


def test_empty_inputs():
  scores, indices, count = run_op(np.ones((2, 3), np.float32),
                                  np.zeros((0, 3), np.float32),
                                  np.zeros((0, 1), np.int32),
                                  np.zeros((2, 0, 1), np.int32),
                                  np.zeros(2, np.int32), 4)
  np.testing.assert_array_equal(count, [0, 0])
  np.testing.assert_array_equal(indices, -np.ones((2, 4)))
  assert np.all(np.isneginf(scores))
  scores, indices, count = run_op(np.zeros((0, 3), np.float32),
                                  np.ones((5, 3), np.float32),
                                  np.ones((5, 1), np.int32),
                                  np.zeros((0, 2, 1), np.int32),
                                  np.zeros(0, np.int32), 4)
  assert scores.shape == (0, 4) and indices.shape == (0, 4) and count.shape == (0,)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_low_precision_items(dtype):
  rng = np.random.default_rng(4)
  # Small integers are exact in half and bfloat16.
  case = random_case(rng, 4, 500, 24, 10, 2, 0.5, integer_valued=True)
  queries, items, item_bits, clauses, num_clauses = case
  scores, indices, count = ops.masked_top_k(
      queries, tf.cast(items, dtype), item_bits, clauses, num_clauses, 20)
  ref_scores, ref_indices, ref_count = top_k_np(*case, 20)
  np.testing.assert_array_equal(indices.numpy(), ref_indices)
  np.testing.assert_array_equal(count.numpy(), ref_count)
  np.testing.assert_array_equal(scores.numpy(), ref_scores.astype(np.float32))


def test_static_shape_in_graph():
  @tf.function
  def search(queries, items):
    return ops.masked_top_k(queries, items, tf.ones([7, 1], tf.int32),
                            tf.zeros([3, 0, 1], tf.int32),
                            tf.zeros([3], tf.int32), 5)
  out = search.get_concrete_function(tf.TensorSpec([3, 4], tf.float32),
                                     tf.TensorSpec([7, 4], tf.float32))
  assert out.structured_outputs.scores.shape.as_list() == [3, 5]
  assert out.structured_outputs.indices.shape.as_list() == [3, 5]
  assert out.structured_outputs.count.shape.as_list() == [3]


@pytest.mark.parametrize("items_dtype", [tf.float32, tf.float16])
def test_gradients_match_dense_reference(items_dtype):
  rng = np.random.default_rng(5)
  queries, items, item_bits, clauses, num_clauses = random_case(
      rng, 4, 60, 6, 8, 2, 0.3, integer_valued=False)
  k = 25  # larger than some queries' eligible counts: padded slots
  weights = tf.constant(rng.standard_normal((4, k)).astype(np.float32))
  q = tf.Variable(queries)
  x = tf.Variable(tf.cast(items, items_dtype))

  with tf.GradientTape(persistent=True) as tape:
    scores, indices, count = ops.masked_top_k(q, x, item_bits, clauses,
                                              num_clauses, k)
    valid = indices >= 0
    loss = tf.reduce_sum(tf.where(valid, scores * weights, 0.0))
    # Dense reference on the same selection.
    chosen = tf.cast(tf.gather(x, tf.maximum(indices, 0)), tf.float32)
    ref_scores = tf.einsum("bd,bkd->bk", q, chosen)
    ref_loss = tf.reduce_sum(tf.where(valid, ref_scores * weights, 0.0))
  assert np.min(count.numpy()) < k
  g_q, g_x = tape.gradient(loss, [q, x])
  r_q, r_x = tape.gradient(ref_loss, [q, x])
  r_x = tf.convert_to_tensor(r_x)
  assert g_x.dtype == items_dtype
  tol = 1e-5 if items_dtype == tf.float32 else 2e-2
  np.testing.assert_allclose(g_q.numpy(), r_q.numpy(), rtol=tol, atol=tol)
  np.testing.assert_allclose(tf.cast(g_x, tf.float32).numpy(),
                             tf.cast(r_x, tf.float32).numpy(), rtol=tol, atol=tol)
  # Raw upstream gradient on padded (-inf) slots must not produce NaN.
  with tf.GradientTape() as tape:
    scores, _, _ = ops.masked_top_k(q, x, item_bits, clauses, num_clauses, k)
  g_q, g_x = tape.gradient(scores, [q, x])
  assert np.all(np.isfinite(g_q.numpy()))
  assert np.all(np.isfinite(tf.cast(tf.convert_to_tensor(g_x), tf.float32).numpy()))


ERROR_CASES = {
    "k_zero": (dict(k=0), "k must be positive"),
    "k_negative": (dict(k=-1), "k must be positive"),
    "d_mismatch": (dict(items=np.ones((5, 4), np.float32)), "dimension d"),
    "w_mismatch": (dict(clauses=np.zeros((2, 1, 2), np.int32)), "words W"),
    "n_mismatch": (dict(item_bits=np.ones((6, 1), np.int32)), "number of items N"),
    "b_mismatch": (dict(num_clauses=np.zeros(3, np.int32)), "batch size B"),
    "num_clauses_high": (dict(num_clauses=np.array([0, 2], np.int32)),
                         "num_clauses[1] = 2 is out of range"),
    "num_clauses_negative": (dict(num_clauses=np.array([-1, 0], np.int32)),
                             "num_clauses[0] = -1 is out of range"),
    "queries_rank": (dict(queries=np.ones((2, 3, 1), np.float32)),
                     "queries must have rank 2"),
    "k_rank": (dict(k=[3]), "k must have rank 0"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors(case):
  override, message = ERROR_CASES[case]
  args = dict(queries=np.ones((2, 3), np.float32),
              items=np.ones((5, 3), np.float32),
              item_bits=np.ones((5, 1), np.int32),
              clauses=np.ones((2, 1, 1), np.int32),
              num_clauses=np.array([1, 0], np.int32), k=3)
  args.update(override)
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
    ops.masked_top_k(**args)


def test_shape_errors_in_graph_mode():
  @tf.function
  def search(queries):
    return ops.masked_top_k(queries, tf.ones([5, 4]), tf.ones([5, 1], tf.int32),
                            tf.zeros([2, 0, 1], tf.int32),
                            tf.zeros([2], tf.int32), 3)
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                     match="dimension d"):
    search.get_concrete_function(tf.TensorSpec([2, 3], tf.float32))


def test_filter_then_top_k_end_to_end():
  keys = ["__live__", "lang=en", "lang=fr", "topic=ai", "topic=ml"]
  rng = np.random.default_rng(6)
  n = 300
  langs = rng.choice(["en", "fr"], n)
  topics = rng.choice(["ai", "ml"], n)
  bits = np.zeros((n, 1), np.int32)
  bits[:, 0] |= 1
  bits[:, 0] |= np.where(langs == "en", 1 << 1, 1 << 2)
  bits[:, 0] |= np.where(topics == "ai", 1 << 3, 1 << 4)
  items = rng.standard_normal((n, 8)).astype(np.float32)
  queries = rng.standard_normal((3, 8)).astype(np.float32)
  filters = ['lang = "en"', "topic IN (ai, ml) and lang = fr", ""]
  clauses, num_clauses = ops.compile_filter(filters, keys)
  _, indices, count = ops.masked_top_k(queries, items, bits, clauses,
                                       num_clauses, 10)
  expected = [langs == "en", langs == "fr", np.ones(n, bool)]
  for b in range(3):
    mask = expected[b]
    scores = items.astype(np.float64) @ queries[b].astype(np.float64)
    pos = np.flatnonzero(mask)
    order = pos[np.lexsort((pos, -scores[pos]))][:10]
    np.testing.assert_array_equal(indices.numpy()[b], order)
    assert count.numpy()[b] == 10
