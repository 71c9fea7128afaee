"""RaBitQ estimator against a float64 reference: unbiased over random
rotations (seeds), variance within the Gaussian bound, query quantization
exact in its own terms, codes equal to Sign-OPORP's."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf.quantization import RaBitQ, SignOPORP
from linr_tf.quantization.rabitq import dequantize_query, unpack_bits


def _pair(rng, dim, cos, norm_o=1.0, norm_q=1.0):
  """o, q float64 [dim] with <o^, q^> = cos."""
  o = rng.standard_normal(dim)
  o /= np.linalg.norm(o)
  r = rng.standard_normal(dim)
  r -= (r @ o) * o
  r /= np.linalg.norm(r)
  q = cos * o + np.sqrt(1 - cos**2) * r
  return norm_o * o, norm_q * q


def _reference(rq, o, q):
  """float64 estimate f_o <sign(W^T o), W^T q> with the float64 W (no query quantization)."""
  w = rq.encoder.projection_matrix().numpy().astype(np.float64)
  yo, yq = o @ w, q @ w
  return (o @ o) / np.abs(yo).sum() * (np.where(yo > 0, 1.0, -1.0) @ yq)


@pytest.mark.parametrize("dim,bits,cos", [(64, 64, 0.6), (64, 128, 0.9), (48, 256, -0.3),
                                          (100, 128, 0.0)])
def test_unbiased_over_rotations_and_variance_bound(dim, bits, cos):
  rng = np.random.default_rng(dim + bits)
  o, q = _pair(rng, dim, cos, norm_o=1.7, norm_q=0.8)
  est = np.array([_reference(RaBitQ(dim, bits, seed=s), o, q) for s in range(400)])
  true = o @ q
  se = est.std(ddof=1) / np.sqrt(est.size)
  assert abs(est.mean() - true) < 4 * se + 1e-3, (est.mean(), true, se)
  # Gaussian-W variance: (pi / 2) ||o||^2 ||q_perp||^2 / m; Hadamard codes do
  # no worse (the sample variance of 400 draws is within 25 % of the truth).
  q_perp_sq = q @ q - (o @ q) ** 2 / (o @ o)
  bound = np.pi / 2 * (o @ o) * q_perp_sq / bits
  assert est.var(ddof=1) <= 1.25 * bound, (est.var(ddof=1), bound)


def test_the_estimate_is_not_the_symmetric_one():
  """A check that can fail: the symmetric cosine estimate is far off for a
  query of norm 3 (no magnitudes), the asymmetric one is not."""
  rng = np.random.default_rng(5)
  o, q = _pair(rng, 64, 0.5, norm_q=3.0)
  est = np.mean([_reference(RaBitQ(64, 256, seed=s), o, q) for s in range(100)])
  assert abs(est - 1.5) < 0.1


@pytest.mark.parametrize("query_bits", [1, 2, 4, 8])
def test_quantized_query_bias_and_error(query_bits):
  """The op's input: planes / scales dequantize to within delta / 2 of y
  (Bq >= 2); the estimate with the quantized query stays unbiased in the mean
  over seeds for Bq >= 4 and its extra error shrinks with Bq (Bq = 1 is
  biased: see below)."""
  rng = np.random.default_rng(query_bits)
  dim, bits = 64, 128
  o, q = _pair(rng, dim, 0.7)
  errs = []
  for seed in range(150):
    rq = RaBitQ(dim, bits, seed=seed, query_bits=query_bits)
    qt = tf.constant(q[None].astype(np.float32))
    planes, scales = rq.encode_query(qt)
    assert planes.shape == (1, query_bits, bits // 32)
    y_hat = dequantize_query(planes, scales, bits).numpy()[0].astype(np.float64)
    y = rq.project(qt).numpy()[0].astype(np.float64)
    if query_bits > 1:
      assert np.abs(y_hat - y).max() <= scales.numpy()[0, 1] / 2 + 1e-5
    codes, factors = rq.encode_items(tf.constant(o[None].astype(np.float32)))
    signs = 2.0 * unpack_bits(codes, bits).numpy()[0] - 1.0
    errs.append(float(factors[0]) * (signs @ y_hat) - _reference(rq, o, q))
  errs = np.array(errs)
  # Bq = 1 (signs times mean |y|) shrinks the estimate toward 0 (measured
  # -0.21 at <o, q> = 0.7): a ranking score, not an unbiased one.
  limit = {1: 0.3, 2: 0.08, 4: 0.02, 8: 0.002}[query_bits]
  assert np.sqrt(np.mean(errs**2)) < limit
  if query_bits >= 4:
    assert abs(errs.mean()) < 4 * errs.std(ddof=1) / np.sqrt(errs.size) + 1e-3


def test_codes_are_sign_oporp_codes_and_factors():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((50, 40)).astype(np.float32)
  x[3] = 0.0
  rq = RaBitQ(40, 96, seed=7, query_bits=2)
  codes, factors = rq.encode_items(x)
  sign_oporp = SignOPORP(40, 96, seed=7)   # held: encode is a tf.function of the instance
  # Center 0 (the default): Sign-OPORP codes; the fingerprint still says
  # "centered codes", which a plain encoder's query codes are not.
  np.testing.assert_array_equal(codes.numpy(), sign_oporp.encode(x).numpy())
  assert rq.fingerprint != sign_oporp.fingerprint
  y = rq.project(x).numpy().astype(np.float64)
  want = (x.astype(np.float64) ** 2).sum(1) / np.maximum(np.abs(y).sum(1), 1e-30)
  want[3] = 0.0
  np.testing.assert_allclose(factors.numpy(), want, rtol=1e-5)
  assert rq.memory_per_item_bytes() == 12 + 4
  dense = rq.estimate(x[:4], codes, factors).numpy()
  assert dense.shape == (4, 50) and np.all(dense[:, 3] == 0)


def test_center_keeps_the_estimate_unbiased():
  """Codes of o - c, plus <c, q>: unbiased for <o, q> over rotations, and the
  variance is that of the residual (smaller when c is near o)."""
  rng = np.random.default_rng(11)
  dim, bits = 64, 128
  o, q = _pair(rng, dim, 0.4)
  c = 0.9 * o + 0.05 * rng.standard_normal(dim)
  est, plain = [], []
  for seed in range(300):
    rq = RaBitQ(dim, bits, seed=seed, query_bits=8)
    est.append(_reference(rq, o - c, q) + c @ q)
    plain.append(_reference(rq, o, q))
  est = np.array(est)
  se = est.std(ddof=1) / np.sqrt(est.size)
  assert abs(est.mean() - o @ q) < 4 * se + 1e-3
  assert est.var() < 0.3 * np.var(plain)   # ||o - c||^2 ~ 0.17 ||o||^2
  # The quantizer's own dense estimate with its stored center (float32, Bq = 8).
  rq = RaBitQ(dim, bits, seed=0, query_bits=8)
  rq.set_center(np.stack([c, c]).astype(np.float32))
  np.testing.assert_allclose(rq.center.numpy(), c, rtol=1e-6)
  codes, factors = rq.encode_items(o[None].astype(np.float32))
  got = rq.estimate(q[None].astype(np.float32), codes, factors).numpy()[0, 0]
  assert got == pytest.approx(_reference(rq, o - c, q) + c @ q, abs=2e-3)


def test_bad_arguments():
  with pytest.raises(ValueError, match="query_bits"):
    RaBitQ(32, 64, query_bits=3)
  with pytest.raises(ValueError, match="num_bits"):
    RaBitQ(32, 48)
  with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
    RaBitQ(4, 64).encode_items(np.float32([[np.nan, 0, 0, 1]]))
