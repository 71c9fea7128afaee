"""Each op's GPU kernel equals its CPU kernel on the same data, inside
TensorFlow: ties, k > passing, float32 / float16 / bfloat16, 1-bit codes, and
the same InvalidArgumentErrors."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import ops
from linr_tf.attributes import AttributeSchema, compile_filters


def _catalogue(n=5000, d=48, seed=0):
  rng = np.random.default_rng(seed)
  langs = rng.choice(["en", "de", "fr", "it"], n)
  topics = rng.choice(["ai", "ml", "ai|ml", "news", ""], n)
  schema = AttributeSchema.from_columns({"lang": langs, "topic": topics})
  bits = schema.encode({"lang": langs, "topic": topics})
  items = rng.normal(size=(n, d)).astype(np.float32)
  items[100:110] = items[5]            # exact ties
  items[200] = np.nan                  # NaN ranks as -inf
  queries = rng.normal(size=(7, d)).astype(np.float32)
  queries[3] = items[5]
  return schema, bits, items, queries


FILTERS = ["", 'lang = "en"', "topic ALL (ai, ml)", 'lang = "it" AND topic = news',
           "NOT lang IN (en, de, fr)", "lang = en AND NOT topic = ai", "topic = ai", ""]


def _on(device, fn):
  with tf.device(device):
    return [t.numpy() for t in fn()]


def _mask(bits, schema, filters):
  program = compile_filters(tf.constant(filters), tf.constant(schema.keys))
  return program


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16])
@pytest.mark.parametrize("k", [1, 37, 2000, 6000])
def test_top_k_gpu_equals_cpu(dtype, k):
  schema, bits, items, queries = _catalogue()
  program = _mask(bits, schema, FILTERS[:7])
  items_t = tf.cast(tf.constant(items), dtype)

  def run():
    mask, count = ops.filter_mask(tf.constant(bits), program)
    a = ops.masked_top_k(queries, items_t, mask, k)
    b = ops.prefilter_top_k(queries, items_t, mask, k)
    return [mask, count, *a, *b]

  cpu, gpu = _on("/CPU:0", run), _on("/GPU:0", run)
  _same_results(cpu[:2], gpu[:2], [])          # mask, count: exact
  for offset in (2, 5):                         # masked, prefilter top-k
    _same_results(cpu[offset:offset + 3], gpu[offset:offset + 3], [0])


@pytest.mark.parametrize("max_union_rate", [0.0, 0.3, 1.0])
def test_prefilter_gpu_chooses_compaction_or_streaming_on_the_device(max_union_rate):
  """`auto`'s op: below / above the rate the GPU compacts or streams; both
  equal the CPU op (which decides per chunk) and the masked op."""
  schema, bits, items, queries = _catalogue(n=40000, seed=4)
  program = _mask(bits, schema, FILTERS[:7])
  items_t = tf.constant(items.astype(np.float16))

  def run():
    mask, _ = ops.filter_mask(tf.constant(bits), program)
    a = ops.prefilter_top_k(queries, items_t, mask, 300, max_union_rate=max_union_rate)
    b = ops.masked_top_k(queries, items_t, mask, 300)
    return [*a, *b]

  cpu, gpu = _on("/CPU:0", run), _on("/GPU:0", run)
  _same_results(cpu[:3], gpu[:3], [0])
  _same_results(gpu[:3], gpu[3:], [])           # one device: bit-identical


def _same_results(cpu, gpu, float_positions):
  """Exact equality, except float32 scores (summation order differs between
  the CPU and GPU dot products): within 1e-5 relative, and indices equal
  wherever the CPU's scores are not within that tolerance of a neighbour."""
  for i, (c, g) in enumerate(zip(cpu, gpu)):
    if i in float_positions:
      np.testing.assert_allclose(c, g, rtol=1e-5, atol=1e-5)
    elif float_positions and i == 1:
      continue                                  # indices: checked below
    else:
      np.testing.assert_array_equal(c, g)
  if float_positions:
    scores, indices = cpu[0], cpu[1]
    gap = np.abs(np.diff(scores, axis=1))
    near = np.zeros_like(scores, bool)
    near[:, 1:] |= gap < 1e-4 * np.maximum(1, np.abs(scores[:, 1:]))
    near[:, :-1] |= near[:, 1:].copy()
    exact_ties = np.zeros_like(near)
    exact_ties[:, 1:] = gap == 0
    ok = ~near | exact_ties
    np.testing.assert_array_equal(np.where(ok, indices, 0), np.where(ok, gpu[1], 0))


def test_filter_mask_gpu_equals_cpu_in_a_function():
  schema, bits, _, _ = _catalogue()
  program = _mask(bits, schema, FILTERS)
  fn = tf.function(lambda b, p: ops.filter_mask(b, p))
  cpu = _on("/CPU:0", lambda: fn(tf.constant(bits), program))
  gpu = _on("/GPU:0", lambda: fn(tf.constant(bits), program))
  np.testing.assert_array_equal(cpu[0], gpu[0])
  np.testing.assert_array_equal(cpu[1], gpu[1])


@pytest.mark.parametrize("k", [1, 50, 3000])
def test_hamming_gpu_equals_cpu(k):
  rng = np.random.default_rng(1)
  n, words = 4000, 4
  codes = rng.integers(-2**31, 2**31, size=(n, words), dtype=np.int64).astype(np.int32)
  codes[10:20] = codes[3]
  qcodes = rng.integers(-2**31, 2**31, size=(5, words), dtype=np.int64).astype(np.int32)
  qcodes[2] = codes[3]
  mask = rng.integers(-2**31, 2**31, size=(5, (n + 31) // 32), dtype=np.int64).astype(np.int32)
  mask[4] = 0                              # nothing passes
  run = lambda: ops.hamming_top_k(qcodes, codes, mask, k)
  for c, g in zip(_on("/CPU:0", run), _on("/GPU:0", run)):
    np.testing.assert_array_equal(c, g)


def test_gpu_errors_match_cpu():
  schema, bits, items, queries = _catalogue(n=500)
  program = _mask(bits, schema, FILTERS[:7])
  for device in ("/CPU:0", "/GPU:0"):
    with tf.device(device):
      mask, _ = ops.filter_mask(tf.constant(bits), program)
      with pytest.raises(tf.errors.InvalidArgumentError, match="k"):
        ops.masked_top_k(queries, items, mask, 0)
      with pytest.raises(tf.errors.InvalidArgumentError):
        ops.masked_top_k(queries[:, :5], items, mask, 5)
      with pytest.raises(tf.errors.InvalidArgumentError):
        ops.filter_mask(tf.constant(bits)[:, :0], program)


def test_k_above_the_gpu_limit_is_a_clear_error():
  rng = np.random.default_rng(2)
  items = rng.normal(size=(20000, 8)).astype(np.float32)
  mask = np.full((1, (20000 + 31) // 32), -1, np.int32)
  with tf.device("/GPU:0"):
    with pytest.raises((tf.errors.UnimplementedError, tf.errors.InvalidArgumentError),
                       match="GPU kernel supports"):
      ops.masked_top_k(items[:1], items, mask, 17000)
