"""`MoLIndex`: the item rows a `MoLSearch` scores, with atomic live updates.

    index = MoLIndex(model, bit_keys=schema.keys)
    index.assign(ids, item_features, attributes)          # build: a model step
    index.upsert_items(ids, item_features, attributes)    # cold items, in-graph
    scores, ids, count = index.search(query_features, ['genre = "Drama"'], k=10)

Stores (`RowLayout.for_index(..., mol_components=Q, cluster_ids=True)`):
ids, versions, attributes (bit 0 `__live__`), vectors (each item's mean
component, for the two-stage search), mol_vectors [cap, Q, d], cluster_ids
[cap]. `upsert_items` runs the item tower, picks each item's cluster
in-graph (nearest centroid for an id the cluster table lacks) and writes all
stores of the affected slots with one `LinrWriteRows`, so a search sees an
item wholly old or wholly new. Searches read one snapshot (`LinrReadRows`).
"""

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from linr_tf import attributes as attributes_lib
from linr_tf import ops
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
    self._slot_of = {}

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
    self._slot_of = {str(i): s for s, i in enumerate(np.asarray(ids).astype(str))}

  def upsert_items(self, ids, features: Mapping[str, np.ndarray], attributes, versions=None):
    """Inserts or replaces items (new slots at the end): item tower + nearest
    cluster in-graph, then one atomic `LinrWriteRows` over every store."""
    ids = [str(i) for i in np.asarray(ids).astype(str)]
    if len(set(ids)) != len(ids):
      raise ValueError("upsert_items: an id appears twice in one batch")
    versions = np.zeros(len(ids), np.int64) if versions is None else versions
    size = len(self._slot_of)
    slots, fresh = [], 0
    for i in ids:
      if i not in self._slot_of:
        self._slot_of[i] = size + fresh
        fresh += 1
      slots.append(self._slot_of[i])
    values = self._values(ids, features, attributes, versions)
    ops.write_rows(self._variables(), tf.constant(slots, tf.int64),
                   self.layout.to_storage(self.layout.names, values),
                   min_rows=size + fresh)

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
