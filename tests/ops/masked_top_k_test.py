"""LinrMaskedTopK / LinrPrefilterTopK against an independent numpy brute force."""

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

SETTINGS = settings(max_examples=40, deadline=None, database=None)
DTYPES = {"float32": tf.float32, "float16": tf.float16, "bfloat16": tf.bfloat16}
TOP_K_OPS = {"mask": ops.masked_top_k, "prefilter": ops.prefilter_top_k}


# ----------------------------------------------------------------- reference
def pack_mask(passes):
  """[B, N] bool -> int32 [B, ceil(N / 32)] (bit i % 32 of word i // 32)."""
  b_size, n = passes.shape
  m = -(-n // 32)
  padded = np.zeros((b_size, m * 32), bool)
  padded[:, :n] = passes
  words = np.zeros((b_size, m), np.uint64)
  for bit in range(32):
    words |= padded[:, bit::32].astype(np.uint64) << np.uint64(bit)
  return words.astype(np.uint32).view(np.int32).reshape(b_size, m)


def top_k_np(queries, items64, passes, k):
  """(scores float64 [B, k], indices [B, k], count [B]); NaN ranks as -inf."""
  b_size = queries.shape[0]
  scores = np.full((b_size, k), -np.inf)
  indices = np.full((b_size, k), -1, np.int64)
  count = np.zeros(b_size, np.int64)
  with np.errstate(invalid="ignore"):
    all_scores = items64 @ queries.astype(np.float64).T  # [N, B]
  all_scores = np.where(np.isnan(all_scores), -np.inf, all_scores)
  for b in range(b_size):
    pos = np.flatnonzero(passes[b])
    order = np.lexsort((pos, -all_scores[pos, b]))[:k]
    count[b] = len(order)
    scores[b, :len(order)] = all_scores[pos[order], b]
    indices[b, :len(order)] = pos[order]
  return scores, indices, count


def stored_values(items, dtype):
  """Items as the op sees them (after the cast to dtype), in float64."""
  return tf.cast(tf.cast(items, dtype), tf.float64).numpy()


def random_case(rng, b_size, n, d, pass_rate, integer_valued):
  if integer_valued:  # few distinct values: many exact ties, exact in all dtypes
    queries = rng.integers(-2, 3, (b_size, d)).astype(np.float32)
    items = rng.integers(-2, 3, (n, d)).astype(np.float32)
  else:
    queries = rng.standard_normal((b_size, d)).astype(np.float32)
    items = rng.standard_normal((n, d)).astype(np.float32)
  passes = rng.random((b_size, n)) < pass_rate
  return queries, items, passes


def run(strategy, queries, items, mask, k):
  s, i, c = TOP_K_OPS[strategy](queries, items, mask, k)
  return s.numpy(), i.numpy(), c.numpy()


def check(queries, items, passes, k, dtype=tf.float32, exact=False):
  """Both strategies equal each other (bit for bit) and the reference."""
  x = tf.cast(items, dtype)
  mask = pack_mask(passes)
  got = {name: run(name, queries, x, mask, k) for name in TOP_K_OPS}
  for a, b in zip(got["mask"], got["prefilter"]):
    np.testing.assert_array_equal(a, b)
  scores, indices, count = got["mask"]
  items64 = stored_values(items, dtype)
  ref_scores, ref_indices, ref_count = top_k_np(queries, items64, passes, k)
  assert scores.shape == (queries.shape[0], k) and indices.shape == scores.shape
  np.testing.assert_array_equal(count, ref_count)
  if exact:
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))
    return
  # Float data: near-ties may order differently in float32, so check the
  # defining properties instead of exact indices.
  with np.errstate(invalid="ignore"):
    all_scores = items64 @ queries.astype(np.float64).T
  all_scores = np.where(np.isnan(all_scores), -np.inf, all_scores)
  for b in range(queries.shape[0]):
    n_valid = count[b]
    got_idx = indices[b, :n_valid]
    assert np.all(indices[b, n_valid:] == -1)
    assert np.all(np.isneginf(scores[b, n_valid:]))
    assert len(set(got_idx.tolist())) == n_valid
    assert np.all(passes[b, got_idx])
    np.testing.assert_allclose(scores[b, :n_valid], all_scores[got_idx, b],
                               rtol=1e-5, atol=1e-4)
    assert np.all(scores[b, 1:n_valid] <= scores[b, :max(n_valid - 1, 0)])
    rest = np.setdiff1d(np.flatnonzero(passes[b]), got_idx)
    if n_valid and len(rest):
      assert all_scores[rest, b].max() <= scores[b, n_valid - 1] + 1e-4
    np.testing.assert_allclose(scores[b, :n_valid], ref_scores[b, :n_valid],
                               rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------- tests
@SETTINGS
@given(b_size=st.integers(0, 9), n=st.integers(0, 300), d=st.integers(1, 40),
       pass_rate=st.sampled_from([0.0, 0.02, 0.3, 1.0]), k=st.integers(1, 60),
       integer_valued=st.booleans(), dtype=st.sampled_from(sorted(DTYPES)),
       seed=st.integers(0, 2**31 - 1))
def test_matches_numpy(b_size, n, d, pass_rate, k, integer_valued, dtype, seed):
  rng = np.random.default_rng(seed)
  queries, items, passes = random_case(rng, b_size, n, d, pass_rate, integer_valued)
  check(queries, items, passes, k, DTYPES[dtype], exact=integer_valued)


@pytest.mark.parametrize("k", [1, 7, 100, 5000])
def test_large_n_many_shards_with_ties(k):
  # N spans several item shards and mask chunks; integer data gives many exact
  # ties, k=1 and k=7 force many buffer compactions.
  rng = np.random.default_rng(k)
  queries, items, passes = random_case(rng, 9, 40000, 16, 0.5, True)
  passes[3] = rng.random(40000) < 0.001
  check(queries, items, passes, k, exact=True)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_portable_path_bit_identical(dtype, monkeypatch):
  # d not a multiple of 8 (tail lanes), B not a multiple of 4 (padded block),
  # B = 1 (single-query kernel).
  rng = np.random.default_rng(7)
  for b_size, d in [(6, 37), (1, 13), (5, 128)]:
    queries, items, passes = random_case(rng, b_size, 3000, d, 0.4, False)
    x = tf.cast(items, DTYPES[dtype])
    mask = pack_mask(passes)
    for strategy in TOP_K_OPS:
      monkeypatch.delenv("LINR_CPU_ISA", raising=False)
      fast = run(strategy, queries, x, mask, 50)
      monkeypatch.setenv("LINR_CPU_ISA", "portable")
      portable = run(strategy, queries, x, mask, 50)
      for a, b in zip(fast, portable):
        np.testing.assert_array_equal(a, b)


def test_duplicated_items_tie_by_index():
  rng = np.random.default_rng(1)
  base = rng.standard_normal((5, 8)).astype(np.float32)
  items = np.concatenate([base] * 40)          # item i == item i % 5
  queries = rng.standard_normal((3, 8)).astype(np.float32)
  passes = np.ones((3, len(items)), bool)
  best = np.argmax(base @ queries.T, axis=0)
  for strategy in TOP_K_OPS:
    scores, indices, _ = run(strategy, queries, items, pack_mask(passes), 12)
    for b in range(3):
      # The best distinct item's 40 copies come first, in ascending index.
      np.testing.assert_array_equal(indices[b], best[b] + 5 * np.arange(12))
      assert np.all(scores[b] == scores[b, 0])


def test_nan_queries_rank_last_by_index():
  rng = np.random.default_rng(2)
  queries = rng.standard_normal((3, 8)).astype(np.float32)
  queries[1, 3] = np.nan
  items = rng.standard_normal((100, 8)).astype(np.float32)
  passes = rng.random((3, 100)) < 0.5
  check(queries, items, passes, 20, exact=False)
  for strategy in TOP_K_OPS:
    scores, indices, count = run(strategy, queries, items, pack_mask(passes), 20)
    assert count[1] == 20 and np.all(np.isneginf(scores[1]))
    np.testing.assert_array_equal(indices[1], np.flatnonzero(passes[1])[:20])


def test_k_exceeds_passing_and_n():
  rng = np.random.default_rng(3)
  queries = rng.standard_normal((3, 4)).astype(np.float32)
  items = rng.standard_normal((10, 4)).astype(np.float32)
  passes = np.zeros((3, 10), bool)
  passes[0, [1, 4, 6]] = True
  passes[1] = True
  for strategy in TOP_K_OPS:
    scores, indices, count = run(strategy, queries, items, pack_mask(passes), 15)
    np.testing.assert_array_equal(count, [3, 10, 0])
    assert set(indices[0, :3]) == {1, 4, 6}
    np.testing.assert_array_equal(indices[0, 3:], [-1] * 12)
    assert np.all(np.isneginf(scores[0, 3:]))
    np.testing.assert_array_equal(np.sort(indices[1, :10]), np.arange(10))
    np.testing.assert_array_equal(indices[2], [-1] * 15)


def test_bits_past_n_are_ignored():
  queries = np.ones((1, 2), np.float32)
  items = np.ones((5, 2), np.float32)
  mask = np.array([[-1]], np.int32)  # all 32 bits set, only 5 items
  for strategy in TOP_K_OPS:
    _, indices, count = run(strategy, queries, items, mask, 8)
    assert count[0] == 5
    np.testing.assert_array_equal(indices[0], [0, 1, 2, 3, 4, -1, -1, -1])


def test_empty_inputs():
  for strategy in TOP_K_OPS:
    scores, indices, count = run(strategy, np.ones((2, 3), np.float32),
                                 np.zeros((0, 3), np.float32),
                                 np.zeros((2, 0), np.int32), 4)
    np.testing.assert_array_equal(count, [0, 0])
    np.testing.assert_array_equal(indices, -np.ones((2, 4)))
    assert np.all(np.isneginf(scores))
    scores, indices, count = run(strategy, np.zeros((0, 3), np.float32),
                                 np.ones((5, 3), np.float32),
                                 np.zeros((0, 1), np.int32), 4)
    assert scores.shape == (0, 4) and indices.shape == (0, 4) and count.shape == (0,)


def test_static_shape_in_graph():
  for fn in TOP_K_OPS.values():
    @tf.function
    def search(queries, items):
      return fn(queries, items, tf.ones([3, 1], tf.int32), 5)  # pylint: disable=cell-var-from-loop
    out = search.get_concrete_function(tf.TensorSpec([3, 4], tf.float32),
                                       tf.TensorSpec([7, 4], tf.float32))
    assert out.structured_outputs.scores.shape.as_list() == [3, 5]
    assert out.structured_outputs.indices.shape.as_list() == [3, 5]
    assert out.structured_outputs.count.shape.as_list() == [3]


@pytest.mark.parametrize("strategy", sorted(TOP_K_OPS))
@pytest.mark.parametrize("items_dtype", [tf.float32, tf.float16])
def test_gradients_match_dense_reference(strategy, items_dtype):
  rng = np.random.default_rng(5)
  queries, items, passes = random_case(rng, 4, 60, 6, 0.3, False)
  mask = pack_mask(passes)
  k = 25  # larger than some queries' passing counts: padded slots
  weights = tf.constant(rng.standard_normal((4, k)).astype(np.float32))
  q = tf.Variable(queries)
  x = tf.Variable(tf.cast(items, items_dtype))
  fn = TOP_K_OPS[strategy]

  with tf.GradientTape(persistent=True) as tape:
    scores, indices, count = fn(q, x, mask, k)
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
    scores, _, _ = fn(q, x, mask, k)
  g_q, g_x = tape.gradient(scores, [q, x])
  assert np.all(np.isfinite(g_q.numpy()))
  assert np.all(np.isfinite(tf.cast(tf.convert_to_tensor(g_x), tf.float32).numpy()))


ERROR_CASES = {
    "k_zero": (dict(k=0), "k must be positive"),
    "k_negative": (dict(k=-1), "k must be positive"),
    "d_mismatch": (dict(items=np.ones((5, 4), np.float32)), "dimension d"),
    "m_mismatch": (dict(mask=np.ones((2, 2), np.int32)), "mask words M"),
    "m_mismatch_n": (dict(items=np.ones((33, 3), np.float32)), "mask words M"),
    "b_mismatch": (dict(mask=np.ones((3, 1), np.int32)), "batch size B"),
    "queries_rank": (dict(queries=np.ones((2, 3, 1), np.float32)),
                     "queries must have rank 2"),
    "mask_rank": (dict(mask=np.ones((2,), np.int32)), "mask must have rank 2"),
    "k_rank": (dict(k=[3]), "k must have rank 0"),
}


@pytest.mark.parametrize("strategy", sorted(TOP_K_OPS))
@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors(strategy, case):
  override, message = ERROR_CASES[case]
  args = dict(queries=np.ones((2, 3), np.float32),
              items=np.ones((5, 3), np.float32),
              mask=np.ones((2, 1), np.int32), k=3)
  args.update(override)
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
    TOP_K_OPS[strategy](**args)


def test_shape_errors_in_graph_mode():
  @tf.function
  def search(queries):
    return ops.prefilter_top_k(queries, tf.ones([5, 4]), tf.ones([2, 1], tf.int32), 3)
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                     match="dimension d"):
    search.get_concrete_function(tf.TensorSpec([2, 3], tf.float32))


# ------------------------------------------------------------ filtered_top_k
def any_bit_program(bit_sets, num_words):
  """int32 [B, L, 2 + W]: query b passes items having any bit of bit_sets[b]
  (an empty set -> kTrue), AND bit 0 (live)."""
  rows = []
  for bits in bit_sets:
    prog = []
    if bits:
      m = np.zeros(num_words, np.uint32)
      for bit in bits:
        m[bit // 32] |= np.uint32(1) << np.uint32(bit % 32)
      prog.append([1, 0] + list(m.view(np.int32)))
    else:
      prog.append([6, 0] + [0] * num_words)
    live = np.zeros(num_words, np.int32)
    live[0] = 1
    prog.append([1, 0] + list(live))
    prog.append([3, 0] + [0] * num_words)
    rows.append(prog)
  return np.array(rows, np.int32)


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.5, 1.0])
def test_filtered_top_k_strategies_agree(rate):
  rng = np.random.default_rng(8)
  n, d = 2000, 16
  item_bits = ((rng.random((n, 2)) < 0.3) * np.array([2, 4])).sum(
      axis=1, keepdims=True).astype(np.int32)
  item_bits[:, 0] |= (rng.random(n) < max(rate, 1e-9)).astype(np.int32)  # live bit
  program = any_bit_program([[], [1], [2], [1, 2]], 1)
  queries = rng.standard_normal((4, d)).astype(np.float32)
  items = rng.standard_normal((n, d)).astype(np.float32)
  results = [ops.filtered_top_k(queries, items, item_bits, program, 30, strategy=s)
             for s in ("auto", "mask", "prefilter")]
  results.append(ops.filtered_top_k(queries, items, item_bits, program, 30,
                                    prefilter_max_pass_rate=1.1))
  graph = tf.function(lambda q: ops.filtered_top_k(q, items, item_bits, program, 30))
  results.append(graph(queries))
  for other in results[1:]:
    for a, b in zip(results[0], other):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  live = (item_bits[:, 0] & 1) != 0
  passes = np.stack([live, live & ((item_bits[:, 0] & 2) != 0),
                     live & ((item_bits[:, 0] & 4) != 0),
                     live & ((item_bits[:, 0] & 6) != 0)])
  _, ref_indices, ref_count = top_k_np(queries, items.astype(np.float64), passes, 30)
  np.testing.assert_array_equal(results[0].count.numpy(), ref_count)
  np.testing.assert_array_equal(results[0].indices.numpy(), ref_indices)


@pytest.mark.parametrize("max_union_rate", [0.0, 0.2, 0.6, 1.0])
def test_prefilter_streams_dense_chunks_and_compacts_sparse_ones(max_union_rate):
  """Items 0..N/2 pass at ~90 %, the rest at ~5 %: with a rate in between,
  LinrPrefilterTopK streams the dense chunks and compacts the sparse ones;
  every rate gives the masked op's results, equal to numpy."""
  rng = np.random.default_rng(11)
  n, d, b = 40000, 24, 3
  rate = np.where(np.arange(n) < n // 2, 0.9, 0.05)
  passes = rng.random((b, n)) < rate
  mask = pack_mask(passes)
  queries = rng.standard_normal((b, d)).astype(np.float32)
  items = rng.standard_normal((n, d)).astype(np.float32)
  got = ops.prefilter_top_k(queries, items, mask, 50, max_union_rate=max_union_rate)
  want = ops.masked_top_k(queries, items, mask, 50)
  for a, c in zip(got, want):
    np.testing.assert_array_equal(a.numpy(), c.numpy())
  _, ref_indices, ref_count = top_k_np(queries, items.astype(np.float64), passes, 50)
  np.testing.assert_array_equal(got.count.numpy(), ref_count)
  np.testing.assert_array_equal(got.indices.numpy(), ref_indices)


def test_prefilter_rejects_a_negative_union_rate():
  with pytest.raises(ValueError, match="max_union_rate"):
    ops.prefilter_top_k(np.ones((1, 2), np.float32), np.ones((3, 2), np.float32),
                        np.ones((1, 1), np.int32), 2, max_union_rate=-0.5)


def test_filtered_top_k_rejects_unknown_strategy():
  with pytest.raises(ValueError, match="strategy"):
    ops.filtered_top_k(np.ones((1, 2), np.float32), np.ones((3, 2), np.float32),
                       np.ones((3, 1), np.int32), any_bit_program([[]], 1), 2,
                       strategy="fast")
