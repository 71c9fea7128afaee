"""LinrMoLTopK against the numpy brute force of tests/ops/mol_reference.py:
scores, order with ties, filters, item dtypes, gradients, bad input."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import ops  # noqa: E402
from linr_tf.ops.mol_ops import mol_scores, mol_top_k  # noqa: E402
from mol_reference import (assert_top_k_matches, mol_scores_np, pack_mask,  # noqa: E402
                           top_k_np)

DTYPES = {"float32": tf.float32, "float16": tf.float16, "bfloat16": tf.bfloat16}


def make_case(rng, b, p, q, n, d, pass_rate, integer_valued=False, duplicates=0):
  if integer_valued:  # exact in every dtype and in float32 dot products
    queries = rng.integers(-3, 4, (b, p, d)).astype(np.float32)
    items = rng.integers(-3, 4, (n, q, d)).astype(np.float32)
  else:
    queries = rng.normal(size=(b, p, d)).astype(np.float32)
    items = rng.normal(size=(n, q, d)).astype(np.float32)
  for _ in range(duplicates):  # exact ties: copies of other rows
    items[rng.integers(n)] = items[rng.integers(n)]
  bias = rng.normal(size=(b, p * q)).astype(np.float32)
  weight = (0.1 * rng.normal(size=(p * q, p * q))).astype(np.float32)
  passes = rng.random((b, n)) < pass_rate
  return queries, items, bias, weight, passes


def run(queries, items, bias, weight, passes, k, dtype="float32", softmax=True):
  stored = tf.cast(items, DTYPES[dtype])
  out = mol_top_k(queries, stored, bias, weight, pack_mask(passes), k, softmax=softmax)
  as_seen = tf.cast(stored, tf.float64).numpy()
  want = top_k_np(mol_scores_np(queries, as_seen, bias, weight, softmax), passes, k)
  return [t.numpy() for t in out], want


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("p,q", [(1, 1), (2, 3), (4, 4), (8, 8)])
def test_matches_numpy(dtype, p, q):
  rng = np.random.default_rng(p * 10 + q)
  case = make_case(rng, b=5, p=p, q=q, n=333, d=20, pass_rate=0.6)
  got, want = run(*case, k=17, dtype=dtype)
  assert_top_k_matches(got, want, rtol=2e-5, atol=2e-4 * p * q)


@pytest.mark.parametrize("softmax", [True, False])
def test_ties_go_to_smaller_index(softmax):
  rng = np.random.default_rng(3)
  queries, items, bias, weight, passes = make_case(
      rng, b=4, p=2, q=2, n=200, d=8, pass_rate=0.9, integer_valued=True, duplicates=60)
  weight[:] = 0.0  # softmax of the bias only: ties of equal x stay exact ties
  got, want = run(queries, items, bias, weight, passes, k=50, softmax=softmax)
  assert_top_k_matches(got, want, rtol=1e-5, atol=1e-4)
  scores, idx, count = got
  ties = 0
  for b in range(4):
    for j in range(1, count[b]):
      if scores[b, j] == scores[b, j - 1]:
        ties += 1
        assert idx[b, j] > idx[b, j - 1]
  assert ties > 0, "the case must contain exact ties"


@pytest.mark.parametrize("pass_rate", [0.0, 0.01, 0.3, 1.0])
def test_filters_equal_unfiltered_then_exact_filter(pass_rate):
  rng = np.random.default_rng(int(pass_rate * 100))
  queries, items, bias, weight, passes = make_case(rng, b=3, p=3, q=2, n=1000, d=16,
                                                   pass_rate=pass_rate)
  k = 25
  got, want = run(queries, items, bias, weight, passes, k=k)
  assert_top_k_matches(got, want, atol=1e-4)
  # Pre-filtering loses nothing: all items scored, then the filter applied.
  full = mol_top_k(queries, items, bias, weight, None, 1000)
  for b in range(3):
    kept = [i for i in full.indices[b].numpy() if i >= 0 and passes[b, i]][:k]
    assert list(got[1][b, :len(kept)]) == kept


def test_k_larger_than_n_and_tail_bits_ignored():
  rng = np.random.default_rng(5)
  queries, items, bias, weight, _ = make_case(rng, b=2, p=2, q=2, n=37, d=4, pass_rate=1)
  mask = np.full((2, 2), -1, np.int32)  # bits past N set
  out = mol_top_k(queries, items, bias, weight, mask, 50)
  assert list(out.count.numpy()) == [37, 37]
  assert out.indices.numpy().max() == 36
  assert np.all(out.indices.numpy()[:, 37:] == -1)


def test_p_q_one_with_zero_gate_equals_dot_product_op():
  rng = np.random.default_rng(6)
  queries = rng.normal(size=(4, 1, 24)).astype(np.float32)
  items = rng.normal(size=(500, 1, 24)).astype(np.float32)
  passes = rng.random((4, 500)) < 0.5
  mask = pack_mask(passes)
  mol = mol_top_k(queries, items, np.zeros((4, 1), np.float32), np.zeros((1, 1), np.float32),
                  mask, 30)
  dot = ops.masked_top_k(queries[:, 0], items[:, 0], mask, 30)
  np.testing.assert_array_equal(mol.indices.numpy(), dot.indices.numpy())
  np.testing.assert_array_equal(mol.scores.numpy(), dot.scores.numpy())


def test_nan_scores_rank_last():
  rng = np.random.default_rng(8)
  queries, items, bias, weight, passes = make_case(rng, b=2, p=2, q=2, n=64, d=4,
                                                   pass_rate=1)
  items[[3, 10]] = np.nan
  out = mol_top_k(queries, items, bias, weight, None, 64)
  idx, scores = out.indices.numpy(), out.scores.numpy()
  for b in range(2):
    assert set(idx[b, -2:]) == {3, 10}
    assert np.all(np.isneginf(scores[b, -2:]))


@pytest.mark.parametrize("softmax", [True, False])
def test_gradients_match_stock_ops(softmax):
  rng = np.random.default_rng(9)
  queries, items, bias, weight, passes = make_case(rng, b=3, p=2, q=3, n=90, d=6,
                                                   pass_rate=0.5, duplicates=5)
  q_v, e_v = tf.Variable(queries), tf.Variable(items)
  b_v, w_v = tf.Variable(bias), tf.Variable(weight)
  upstream = rng.normal(size=(3, 12)).astype(np.float32)
  mask = pack_mask(passes)
  with tf.GradientTape() as tape:
    out = mol_top_k(q_v, e_v, b_v, w_v, mask, 12, softmax=softmax)
    loss = tf.reduce_sum(tf.where(out.indices >= 0, out.scores, 0.0) * upstream)
  got = tape.gradient(loss, [q_v, e_v, b_v, w_v])
  idx = out.indices.numpy()
  with tf.GradientTape() as tape:
    gathered = tf.gather(e_v, np.maximum(idx, 0))
    s = mol_scores(q_v, gathered, b_v, w_v, softmax)
    loss = tf.reduce_sum(tf.where(idx >= 0, s, 0.0) * upstream)
  want = tape.gradient(loss, [q_v, e_v, b_v, w_v])
  for g, w in zip(got, want):
    np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(),
                               tf.convert_to_tensor(w).numpy(), rtol=1e-4, atol=1e-5)


def test_gradient_in_tf_function_and_half_items():
  rng = np.random.default_rng(10)
  queries, items, bias, weight, _ = make_case(rng, b=2, p=2, q=2, n=40, d=8, pass_rate=1)
  e_v = tf.Variable(tf.cast(items, tf.float16))

  @tf.function
  def grads(q):
    with tf.GradientTape() as tape:
      tape.watch(q)
      out = mol_top_k(q, e_v, bias, weight, None, 5)
      loss = tf.reduce_sum(out.scores)
    return tape.gradient(loss, [q, e_v])

  gq, ge = grads(tf.constant(queries))
  assert gq.shape == (2, 2, 8) and ge.dtype == tf.float16
  assert np.abs(gq.numpy()).sum() > 0


@pytest.mark.parametrize("bad,message", [
    (dict(queries=np.zeros((2, 4), np.float32)), "queries \\[B, P, d\\] must have rank 3"),
    (dict(items=np.zeros((10, 2, 5), np.float32)), "embedding dimension d mismatch"),
    (dict(gate_bias=np.zeros((2, 3), np.float32)), "gate_bias must be \\[B, P\\*Q\\]"),
    (dict(gate_weight=np.zeros((4, 5), np.float32)), "gate_weight must be"),
    (dict(mask=np.zeros((2, 2), np.int32)), "mask words M mismatch"),
    (dict(k=0), "k must be positive"),
    (dict(queries=np.zeros((2, 9, 4), np.float32), gate_bias=np.zeros((2, 18), np.float32),
          gate_weight=np.zeros((18, 18), np.float32)), "P and Q must be in"),
])
def test_bad_input_is_named(bad, message):
  args = dict(queries=np.zeros((2, 2, 4), np.float32), items=np.zeros((10, 2, 4), np.float32),
              gate_bias=np.zeros((2, 4), np.float32), gate_weight=np.zeros((4, 4), np.float32),
              mask=np.zeros((2, 1), np.int32), k=3)
  args.update(bad)
  with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=message):
    mol_top_k(args["queries"], args["items"], args["gate_bias"], args["gate_weight"],
              args["mask"], args["k"])
