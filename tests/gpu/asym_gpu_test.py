"""LinrAsymmetricHammingTopK: the GPU kernel equals the CPU kernel (and the
numpy brute force of tests/ops/asym_hamming_top_k_test.py) bit for bit: ties,
NaN factors, filters, k > passing, Bq in {1, 2, 4, 8}, code widths 1..32
words, the same InvalidArgumentErrors; and an index with RaBitQ codes searches
alike on both devices."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "ops"))

from asym_reference import pack_mask, random_inputs, scores_np, top_k_np  # noqa: E402
from linr_tf import ops  # noqa: E402


def _run(device, planes, scales, codes, factors, mask, k):
  with tf.device(device):
    out = ops.asymmetric_hamming_top_k(tf.constant(planes), tf.constant(scales),
                                       tf.constant(codes), tf.constant(factors),
                                       tf.constant(mask), k)
    return out.scores.numpy(), out.indices.numpy(), out.count.numpy()


@pytest.mark.parametrize("words", [1, 2, 4, 8, 16, 32, 3])
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("few_values", [False, True])
def test_gpu_equals_cpu_and_numpy(words, bits, few_values):
  rng = np.random.default_rng(words * 10 + bits)
  n = 20_011
  planes, scales, codes, factors = random_inputs(rng, 6, n, words, bits, few_values)
  factors[[7, 900]] = np.nan
  passes = rng.random((6, n)) < np.array([1.0, 0.5, 0.1, 0.001, 0.0, 0.9])[:, None]
  mask = pack_mask(passes)
  for k in (1, 100, 3000):
    cpu = _run("/CPU:0", planes, scales, codes, factors, mask, k)
    gpu = _run("/GPU:0", planes, scales, codes, factors, mask, k)
    for a, b in zip(cpu, gpu):
      np.testing.assert_array_equal(a, b)
  want = top_k_np(scores_np(planes, scales, codes, factors), passes, 100)
  gpu = _run("/GPU:0", planes, scales, codes, factors, mask, 100)
  for a, b in zip(gpu, want):
    np.testing.assert_array_equal(a, b)


def test_gpu_large_batch_and_ties_by_index():
  rng = np.random.default_rng(9)
  planes, scales, codes, factors = random_inputs(rng, 70, 5000, 4, 4, few_values=True)
  mask = pack_mask(rng.random((70, 5000)) < 0.8)
  cpu = _run("/CPU:0", planes, scales, codes, factors, mask, 600)
  gpu = _run("/GPU:0", planes, scales, codes, factors, mask, 600)
  for a, b in zip(cpu, gpu):
    np.testing.assert_array_equal(a, b)


def test_gpu_rejects_bad_inputs_like_cpu():
  planes = np.zeros((2, 9, 2), np.int32)
  for device in ("/CPU:0", "/GPU:0"):
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 to 8 bit planes"):
      _run(device, planes, np.zeros((2, 2), np.float32), np.zeros((40, 2), np.int32),
           np.ones(40, np.float32), np.zeros((2, 2), np.int32), 3)
