"""`MoLIndex`: the item rows a `MoLSearch` scores, with atomic live updates.

    index = MoLIndex(model, bit_keys=schema.keys)
    index.assign(ids, item_features, attributes)          # build: a model step
    index.upsert_items(ids, item_features, attributes)    # cold items, in-graph
    scores, ids, count = index.search(query_features, ['genre = "Drama"'], k=10)

Stores (`RowLayout.for_index(..., mol_components=Q, cluster_ids=True)`):
ids, versions, attributes (bit 0 `__live__`), vectors (each item's mean
component, for the two-stage search), mol_vectors [cap, Q, d], cluster_ids
[cap]. `upsert_items` (in-graph: `upsert`) runs the item tower, picks each item's cluster
in-graph (nearest centroid for an id the cluster table lacks) and writes all
stores of the affected slots with one `LinrWriteRows`, so a search sees an
item wholly old or wholly new. Searches read one snapshot (`LinrReadRows`).
"""

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from linr_tf import attributes as attributes_lib
from linr_tf import ops
from linr_tf.index.item_index import WriterLock
from linr_tf.index.rows import RowLayout
from linr_tf.search.kernels import CustomOpKernels
from linr_tf.search.mol import MoLSearch


class MoLIndex(tf.Module):
  """Item rows of a `MoLRetrievalModel` and its searcher."""

  def __init__(self, model, bit_keys: Sequence[str] = ("__live__",), kernels=None):
    super().__init__(name="mol_index")
    self.model = model
    self.bit_keys = list(bit_keys)
    m = model.cfg.mol
    self.layout = RowLayout.for_index(
        model.dim, max(1, -(-len(self.bit_keys) // 32)), vectors=m.vector_dtype,
        mol_components=model.num_item, mol_dtype=m.vector_dtype,
        cluster_ids=bool(m.clusters))
    self.rows = self.layout.make_variables(0)
    self.searcher = MoLSearch(model.scorer, m.rerank_candidates, kernels or CustomOpKernels())
    self.slot_of = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=-1,
                                                          name="slot_of")
    self.num_slots = tf.Variable(0, dtype=tf.int64, trainable=False, name="num_slots")
    self.writer_lock = WriterLock()   # serialises upserts, as in ItemIndex

  def _stores(self, features, cluster_ids=None):
    e = self.model.item_embeddings(features, cluster_ids)
    dtype = self.layout.field("mol_vectors").dtype
    out = {"vectors": tf.cast(tf.math.l2_normalize(tf.reduce_mean(e, axis=1), -1), dtype),
           "mol_vectors": tf.cast(e, dtype)}
    if self.layout.field("cluster_ids") is not None:
      if cluster_ids is None:
        cluster_ids = self.model.item_cluster_ids(features)
      out["cluster_ids"] = tf.cast(cluster_ids, tf.int32)
    return out

  def _values(self, ids, features, attributes, versions):
    ids = np.asarray(ids).astype(str)
    attributes = attributes_lib.set_live(np.asarray(attributes, np.int32).reshape(len(ids), -1))
    stores = self._stores({k: tf.convert_to_tensor(v) for k, v in features.items()})
    values = {"ids": tf.constant(ids), "versions": tf.constant(versions, tf.int64),
              "attributes": tf.constant(attributes), **stores}
    return [values[n] for n in self.layout.names]

  def assign(self, ids, features: Mapping[str, np.ndarray], attributes, versions=None):
    """Replaces every row (index building, a model step)."""
    n = len(ids)
    versions = np.zeros(n, np.int64) if versions is None else versions
    values = self._values(ids, features, attributes, versions)
    for var, value in zip(self._variables(), self.layout.to_storage(self.layout.names, values)):
      var.assign(value)
    keys, _ = self.slot_of.export()
    self.slot_of.remove(keys)
    self.slot_of.insert(tf.constant(np.asarray(ids).astype(str)), tf.range(n, dtype=tf.int64))
    self.num_slots.assign(n)

  def upsert_items(self, ids, features: Mapping[str, np.ndarray], attributes, versions=None):
    """Inserts or replaces items (numpy in, see `upsert`)."""
    ids = np.asarray(ids).astype(str)
    if len(set(ids)) != len(ids):
      raise ValueError("upsert_items: an id appears twice in one batch")
    versions = np.zeros(len(ids), np.int64) if versions is None else versions
    attributes = attributes_lib.set_live(np.asarray(attributes, np.int32).reshape(len(ids), -1))
    return self.upsert(tf.constant(ids), {k: tf.convert_to_tensor(v) for k, v in features.items()},
                       tf.constant(attributes), tf.constant(versions, tf.int64))

  def upsert(self, ids, features, attributes, versions):
    """In-graph upsert (tensors; attributes with the live bit set): item tower
    + cluster (nearest centroid for an unknown id), slots from `slot_of` (new
    ids after `num_slots`), then one atomic `LinrWriteRows` over every store.
    Returns the slots [M] int64. Slot allocation and the write run under the
    index's writer mutex (`WriterLock`, as `ItemIndex`), so concurrent
    upserts never hand out one slot twice."""
    unique = tf.size(tf.unique(ids).y)
    check = tf.debugging.assert_equal(unique, tf.size(ids),
                                      message="upsert_items: an id appears twice in one batch")
    stores = self._stores(features)   # the towers run outside the lock

    def body():
      with tf.control_dependencies([check]):
        found = self.slot_of.lookup(ids)
      new = found < 0
      start = self.num_slots.read_value()
      fresh = tf.reduce_sum(tf.cast(new, tf.int64))
      slots = tf.where(new, start + tf.cumsum(tf.cast(new, tf.int64)) - 1, found)
      values = {"ids": ids, "versions": versions, "attributes": attributes, **stores}
      written = ops.write_rows(self._variables(), slots,
                               self.layout.to_storage(self.layout.names,
                                                      [values[n] for n in self.layout.names]),
                               min_rows=start + fresh)
      with tf.control_dependencies([written]):
        done = [self.slot_of.insert(ids, slots), self.num_slots.assign_add(fresh)]
      with tf.control_dependencies(done):
        return tf.identity(slots)

    return self.writer_lock.run(body)

  def _variables(self):
    return [getattr(self.rows, n) for n in self.layout.names]

  def snapshot(self):
    return self.layout.read(self.rows)

  def search_slots(self, queries, filters, k):
    """MaskedTopK of slots for query embeddings [B, P, d] and filters [B]."""
    rows = self.snapshot()
    passing = self.searcher.kernels.pass_mask(filters, tf.constant(self.bit_keys), rows.attributes)
    return self.searcher.search(queries, rows, passing, k), rows

  def search(self, query_features, filters, k):
    """(scores [B, k], item ids [B, k] ("" padding), count [B])."""
    q = self.model.query_embeddings(query_features)
    found, rows = self.search_slots(q, tf.convert_to_tensor(filters, tf.string), k)
    safe = tf.maximum(found.indices, 0)
    ids = tf.where(found.indices >= 0, tf.gather(rows.ids, safe), "")
    return found.scores, ids, found.count
