"""LinrMoLTopK's two CPU builds (custom_ops/mol/mol_cpu_scan.h): the AVX2
blocked scan (8 items per block, one item per SIMD lane in the mixture) and
the portable item-by-item scan give bit-identical results, and both match
the float64 numpy brute force tightly (the CPU's expf included). Shapes
cover partial blocks, blocks spanning mask words, d % 8 != 0, fp16 / bf16
items, per-query filters and B > 8."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.ops.mol_ops import mol_top_k  # noqa: E402
from mol_reference import (assert_top_k_matches, mol_scores_np, pack_mask,  # noqa: E402
                           top_k_np)

DTYPES = {"float32": tf.float32, "float16": tf.float16, "bfloat16": tf.bfloat16}


def run_isa(isa, *args, **kwargs):
  old = os.environ.get("LINR_CPU_ISA")
  os.environ["LINR_CPU_ISA"] = isa
  try:
    with tf.device("/CPU:0"):
      out = mol_top_k(*args, **kwargs)
    return [t.numpy() for t in out]
  finally:
    if old is None:
      del os.environ["LINR_CPU_ISA"]
    else:
      os.environ["LINR_CPU_ISA"] = old


CASES = [  # b, p, q, n, d, pass_rate, dtype, softmax
    (1, 4, 4, 1000, 64, 1.0, "float32", True),
    (3, 2, 3, 517, 13, 0.3, "float32", True),
    (17, 1, 1, 301, 5, 0.5, "float32", True),
    (5, 8, 8, 203, 24, 0.7, "bfloat16", True),
    (2, 3, 5, 777, 16, 0.05, "float16", True),
    (9, 2, 2, 450, 8, 0.9, "float32", False),
    (4, 4, 2, 333, 70, 0.2, "float16", False),
]


@pytest.mark.parametrize("b,p,q,n,d,pass_rate,dtype,softmax", CASES)
def test_avx2_equals_portable_and_numpy(b, p, q, n, d, pass_rate, dtype, softmax):
  rng = np.random.default_rng(b * 1000 + p * 100 + q * 10 + d)
  queries = rng.normal(size=(b, p, d)).astype(np.float32)
  items = rng.normal(size=(n, q, d)).astype(np.float32)
  bias = rng.normal(size=(b, p * q)).astype(np.float32)
  weight = (0.3 * rng.normal(size=(p * q, p * q))).astype(np.float32)
  passes = rng.random((b, n)) < pass_rate
  stored = tf.cast(items, DTYPES[dtype])
  args = (queries, stored, bias, weight, pack_mask(passes), 40)
  simd = run_isa("auto", *args, softmax=softmax)
  portable = run_isa("portable", *args, softmax=softmax)
  for a, c in zip(simd, portable):
    np.testing.assert_array_equal(a, c)
  as_seen = tf.cast(stored, tf.float64).numpy()
  want = top_k_np(mol_scores_np(queries, as_seen, bias, weight, softmax), passes, 40)
  assert_top_k_matches(simd, want, rtol=2e-5, atol=1e-5 * p * q)


def test_softmax_gate_extremes_match_numpy():
  """Gate logits spread over [-200, 200]: the CPU expf underflows to 0 and
  the largest logit's weight is 1, as in float64."""
  rng = np.random.default_rng(3)
  b, p, q, n, d = 4, 2, 4, 300, 16
  queries = rng.normal(size=(b, p, d)).astype(np.float32)
  items = rng.normal(size=(n, q, d)).astype(np.float32)
  bias = rng.uniform(-200, 200, size=(b, p * q)).astype(np.float32)
  weight = (5 * rng.normal(size=(p * q, p * q))).astype(np.float32)
  passes = np.ones((b, n), bool)
  args = (queries, items, bias, weight, pack_mask(passes), 25)
  simd = run_isa("auto", *args)
  portable = run_isa("portable", *args)
  for a, c in zip(simd, portable):
    np.testing.assert_array_equal(a, c)
  want = top_k_np(mol_scores_np(queries, items.astype(np.float64), bias, weight, True),
                  passes, 25)
  assert_top_k_matches(simd, want, rtol=2e-5, atol=1e-4)


def test_nan_item_ranks_last_on_both_builds():
  rng = np.random.default_rng(4)
  queries = rng.normal(size=(2, 2, 8)).astype(np.float32)
  items = rng.normal(size=(20, 2, 8)).astype(np.float32)
  items[5, 1, 3] = np.nan
  bias = np.zeros((2, 4), np.float32)
  weight = np.zeros((4, 4), np.float32)
  args = (queries, items, bias, weight, pack_mask(np.ones((2, 20), bool)), 20)
  for isa in ("auto", "portable"):
    scores, idx, count = run_isa(isa, *args)
    assert list(count) == [20, 20]
    assert (idx[:, -1] == 5).all(), idx
    assert np.isneginf(scores[:, -1]).all() or np.isnan(scores[:, -1]).all()
