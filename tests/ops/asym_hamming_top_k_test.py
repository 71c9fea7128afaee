"""LinrAsymmetricHammingTopK against an independent numpy brute force.

The reference unpacks every bit, forms u_j from the query's bit planes and
computes the score with the kernel's float32 steps (f * (lo * A + delta * C),
A = sum_j (2 x_j - 1), C = sum_j (2 x_j - 1) u_j, rounded once per step), so
results must match exactly: scores, indices, ties by index, counts, padding.
"""

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from asym_reference import (pack_mask, random_inputs, scores_np, top_k_np,  # noqa: E402
                            unpack)

SETTINGS = settings(max_examples=60, deadline=None, database=None)


def run(planes, scales, codes, factors, mask, k):
  out = ops.asymmetric_hamming_top_k(planes, scales, codes, factors, mask, k)
  return out.scores.numpy(), out.indices.numpy(), out.count.numpy()


def check(planes, scales, codes, factors, passes, k):
  got = run(planes, scales, codes, factors, pack_mask(passes), k)
  want = top_k_np(scores_np(planes, scales, codes, factors), passes, k)
  np.testing.assert_array_equal(got[2], want[2])
  np.testing.assert_array_equal(got[1], want[1])
  np.testing.assert_array_equal(got[0], want[0])


@SETTINGS
@given(b_size=st.integers(1, 9), n=st.integers(1, 300), words=st.sampled_from([1, 2, 3, 4, 8, 16]),
       bits=st.sampled_from([1, 2, 4, 8]), pass_rate=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
       k=st.integers(1, 40), few_values=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_matches_numpy(b_size, n, words, bits, pass_rate, k, few_values, seed):
  rng = np.random.default_rng(seed)
  inputs = random_inputs(rng, b_size, n, words, bits, few_values)
  check(*inputs, rng.random((b_size, n)) < pass_rate, k)


@pytest.mark.parametrize("words", [2, 4, 8])
def test_large_n_many_shards_with_ties(words):
  rng = np.random.default_rng(3)
  inputs = random_inputs(rng, 5, 40_000, words, 4, few_values=True)
  check(*inputs, rng.random((5, 40_000)) < 0.7, 257)


@pytest.mark.parametrize("words", [2, 4, 8, 16, 3])
def test_portable_path_identical(words, monkeypatch):
  rng = np.random.default_rng(words)
  inputs = random_inputs(rng, 3, 5000, words, 8, few_values=False)
  mask = pack_mask(rng.random((3, 5000)) < 0.8)
  monkeypatch.delenv("LINR_CPU_ISA", raising=False)
  best = run(*inputs, mask, 50)
  monkeypatch.setenv("LINR_CPU_ISA", "portable")
  portable = run(*inputs, mask, 50)
  for a, b in zip(best, portable):
    np.testing.assert_array_equal(a, b)


def test_nan_factor_ranks_last_and_counts():
  rng = np.random.default_rng(0)
  planes, scales, codes, factors = random_inputs(rng, 2, 40, 2, 4, few_values=False)
  factors[[3, 17]] = np.nan
  factors[5] = np.inf
  passes = np.ones((2, 40), bool)
  check(planes, scales, codes, factors, passes, 40)
  scores, indices, count = run(planes, scales, codes, factors, None, 40)
  assert (count == 40).all() and set(indices[0, -2:]) == {3, 17}


def test_k_exceeds_passing_and_n_and_bits_past_n_ignored():
  rng = np.random.default_rng(1)
  planes, scales, codes, factors = random_inputs(rng, 2, 37, 4, 2, few_values=False)
  passes = np.zeros((2, 37), bool)
  passes[0, [0, 5, 36]] = True
  mask = pack_mask(passes)
  mask[:, 1] |= np.int32(-1 << 5)  # bits past N = 37 are set: ignored
  got = run(planes, scales, codes, factors, mask, 50)
  want = top_k_np(scores_np(planes, scales, codes, factors), passes, 50)
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a, b)
  assert list(got[2]) == [3, 0] and (got[1][1] == -1).all() and np.isneginf(got[0][1]).all()


def test_score_is_the_inner_product_with_the_dequantized_query():
  """Independent of the kernel's integer algebra: f * <2x - 1, lo + delta u>."""
  rng = np.random.default_rng(2)
  planes, scales, codes, factors = random_inputs(rng, 3, 200, 4, 4, few_values=False)
  u = sum(unpack(planes[:, p]) << p for p in range(4)).astype(np.float64)
  y = scales[:, :1].astype(np.float64) + scales[:, 1:].astype(np.float64) * u
  want = (y @ (2.0 * unpack(codes) - 1.0).T) * factors[None, :].astype(np.float64)
  scores, indices, _ = run(planes, scales, codes, factors, None, 200)
  got = np.take_along_axis(want, indices, 1)
  np.testing.assert_allclose(scores, got, rtol=1e-5, atol=1e-4)
  assert (np.diff(got, axis=1) <= 1e-4).all()


def test_empty_inputs():
  planes = np.zeros((0, 4, 2), np.int32)
  out = run(planes, np.zeros((0, 2), np.float32), np.zeros((5, 2), np.int32),
            np.ones(5, np.float32), np.zeros((0, 1), np.int32), 3)
  assert out[0].shape == (0, 3)
  out = run(np.zeros((2, 4, 2), np.int32), np.zeros((2, 2), np.float32),
            np.zeros((0, 2), np.int32), np.zeros(0, np.float32), np.zeros((2, 0), np.int32), 3)
  assert (out[2] == 0).all() and (out[1] == -1).all()


P, S, C, F = (np.zeros((2, 4, 2), np.int32), np.zeros((2, 2), np.float32),
              np.zeros((40, 2), np.int32), np.ones(40, np.float32))
M = np.zeros((2, 2), np.int32)


@pytest.mark.parametrize("args,pattern", [
    ((np.zeros((2, 8), np.int32), S, C, F, M, 3), "query_planes must have rank 3"),
    ((np.zeros((2, 9, 2), np.int32), S, C, F, M, 3), "1 to 8 bit planes"),
    ((np.zeros((2, 0, 2), np.int32), S, C, F, M, 3), "1 to 8 bit planes"),
    ((P, S, np.zeros((40, 3), np.int32), F, M, 3), "code width mismatch"),
    ((P, np.zeros((2, 3), np.float32), C, F, M, 3), "query_scales must be"),
    ((P, S, C, np.ones(39, np.float32), M, 3), "item_factors must"),
    ((P, S, C, F, np.zeros((2, 3), np.int32), 3), "mask words M mismatch"),
    ((P, S, C, F, M, 0), "k must be positive"),
])
def test_bad_inputs(args, pattern):
  with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=pattern):
    run(*args)


def test_bad_inputs_in_graph_with_unknown_shapes():
  @tf.function(input_signature=[tf.TensorSpec(None, tf.int32), tf.TensorSpec(None, tf.float32),
                                tf.TensorSpec(None, tf.int32), tf.TensorSpec(None, tf.float32)])
  def fn(planes, scales, codes, factors):
    return ops.asymmetric_hamming_top_k(planes, scales, codes, factors, None, 3).indices

  with pytest.raises(tf.errors.InvalidArgumentError, match="item_factors must"):
    fn(P, S, C, np.ones(7, np.float32))
  with pytest.raises(tf.errors.InvalidArgumentError, match="1 to 8 bit planes"):
    fn(np.zeros((2, 9, 2), np.int32), S, C, F)
