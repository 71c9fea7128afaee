"""LinrFilterMaskColumns on the GPU equals the CPU kernel (exact numbers, value
ids, item id sets beside bitsets), at the op level and through an ItemIndex
whose column stores live in GPU memory."""

import numpy as np
import pytest
import tensorflow as tf

from filter_columns_test import Case
from linr_tf import ops
from linr_tf.column_filters import append_live
from linr_tf.index import ItemIndex


def _inputs(case, filters):
  program, operands, value_lookups, id_lookups = ops.compile_filter_columns(
      tf.constant(filters), case.bits_schema.keys, case.columns.number_specs,
      case.columns.value_specs)
  value_refs = tf.cast(tf.reshape(case.value_table.lookup(tf.reshape(value_lookups, [-1])),
                                  tf.shape(value_lookups)), tf.int32)
  id_slots = tf.reshape(case.slot_table.lookup(tf.reshape(id_lookups, [-1])),
                        tf.shape(id_lookups))
  return append_live(program), operands, value_refs, id_slots


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("batch", [1, 3, 70])
def test_filter_mask_columns_gpu_equals_cpu(seed, batch):
  case = Case(seed, n=4000 + 997 * seed)
  exprs = [case.expression() for _ in range(batch)]
  filters = [text for text, _ in exprs]
  program, operands, value_refs, id_slots = _inputs(case, filters)
  out = {}
  for device in ("/CPU:0", "/GPU:0"):
    with tf.device(device):
      mask, count = ops.filter_mask_columns(
          tf.constant(case.bits), program, operands, value_refs, id_slots,
          tf.constant(case.number_store), tf.constant(case.value_store))
      out[device] = (mask.numpy(), count.numpy())
  np.testing.assert_array_equal(out["/CPU:0"][0], out["/GPU:0"][0])
  np.testing.assert_array_equal(out["/CPU:0"][1], out["/GPU:0"][1])
  # Both equal the Python evaluator (a CPU-only bug would pass the above).
  words = out["/GPU:0"][0].view(np.uint32)
  got = ((words[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1).reshape(batch, -1)[:, :case.n]
  for b, (text, fn) in enumerate(exprs):
    want = np.array([fn(i) for i in range(case.n)])
    assert np.array_equal(got[b].astype(bool), want), (text, np.flatnonzero(got[b] != want)[:5])


def test_item_index_column_search_gpu_equals_cpu():
  case = Case(7, n=3000)
  rng = np.random.default_rng(0)
  emb = rng.normal(size=(case.n, 16)).astype(np.float32)
  filters = tf.constant([case.expression()[0] for _ in range(5)])
  queries = tf.constant(rng.normal(size=(5, 16)).astype(np.float32))
  results = {}
  for device in ("/CPU:0", "/GPU:0"):
    with tf.device(device):
      index = ItemIndex(16, case.bits_schema.keys, columns=case.columns)
      index.assign(np.array(case.ids), emb, case.bits, numbers=case.number_store,
                   value_ids=case.value_store)
      results[device] = [t.numpy() for t in tf.function(lambda q, f: index(q, f, 50))(queries, filters)]
  if tf.config.list_physical_devices("GPU"):
    assert "GPU" in index.numbers.device and "GPU" in index.value_ids.device
  for a, b in zip(results["/CPU:0"], results["/GPU:0"]):
    if a.dtype == np.float32:
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    else:
      np.testing.assert_array_equal(a, b)
