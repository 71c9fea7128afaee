"""`MoLIndex`: item features in, a MoL `ItemIndex` underneath.

    index = MoLIndex(model, bit_keys=schema.keys)
    index.assign(ids, item_features, attributes)          # build: a model step
    index.upsert_items(ids, item_features, attributes, versions=[1, ...])   # cold items
    scores, ids, count = index.search(query_features, ['genre = "Drama"'], k=10)

A thin front end for a `MoLRetrievalModel` used on its own (bench/mol.py,
the layer-level tests): the rows live in an `ItemIndex` built with the
model's scorer (`ItemIndex(..., mol_scorer=...)`: `mol_vectors` [cap, Q, d],
`vectors` (each item's mean component), `cluster_ids`), searched by
`MoLSearch` through the searcher seam and written by `ItemIndex.upsert`
(version rule, free slots, capacity growth, one atomic `LinrWriteRows`,
the writer mutex). This front end only runs the towers: item features ->
[B, Q, d] rows + cluster ids (the nearest centroid, in-graph, for an id the
cluster table lacks), query features -> [B, P, d]. The product path
(`linr_tf train` with a `mol` config section) uses `model.index` directly.
"""

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from linr_tf import attributes as attributes_lib
from linr_tf.index.item_index import ItemIndex
from linr_tf.ops.topk_ops import MaskedTopK


class MoLIndex(tf.Module):
  """Item rows of a `MoLRetrievalModel` and its searcher (an `ItemIndex`)."""

  def __init__(self, model, bit_keys: Sequence[str] = ("__live__",), kernels=None):
    super().__init__(name="mol_index")
    self.model = model
    self.bit_keys = list(bit_keys)
    m = model.cfg.mol
    self.index = ItemIndex(model.dim, self.bit_keys, vectors=m.vector_dtype,
                           mol_scorer=model.scorer, num_clusters=m.clusters,
                           mol_rerank=m.rerank_candidates, name="mol_item_index")
    if kernels is not None:
      self.index.searcher = self.index.searcher.with_kernels(kernels)

  # The ItemIndex's state, under the names this class always had.
  @property
  def searcher(self):
    return self.index.searcher

  @property
  def layout(self):
    return self.index.layout

  @property
  def rows(self):
    return self.index.rows

  @property
  def slot_of(self):
    return self.index.slot_of

  @property
  def num_slots(self):
    return self.index.num_slots

  def _rows(self, features):
    """{"embeddings": [B, Q, d], "cluster_ids": [B]} of item features."""
    out = self.model.item_tower({k: tf.convert_to_tensor(v) for k, v in features.items()})
    return {"embeddings": out["embeddings"], **(
        {"cluster_ids": out["cluster_ids"]} if self.index.num_clusters else {})}

  def assign(self, ids, features: Mapping[str, np.ndarray], attributes, versions=None):
    """Replaces every row (index building, a model step)."""
    attributes = attributes_lib.set_live(np.asarray(attributes, np.int32).reshape(len(ids), -1))
    rows = {k: v.numpy() for k, v in self._rows(features).items()}
    self.index.assign(np.asarray(ids).astype(str), attributes=attributes, versions=versions,
                      **rows)

  def upsert_items(self, ids, features: Mapping[str, np.ndarray], attributes, versions=None):
    """Inserts or replaces items (numpy in, see `upsert`); versions default
    to 0, so replacing an existing item needs a newer version."""
    ids = np.asarray(ids).astype(str)
    if len(set(ids)) != len(ids):
      raise ValueError("upsert_items: an id appears twice in one batch")
    versions = np.zeros(len(ids), np.int64) if versions is None else versions
    attributes = np.asarray(attributes, np.int32).reshape(len(ids), -1)
    return self.upsert(tf.constant(ids), {k: tf.convert_to_tensor(v) for k, v in features.items()},
                       tf.constant(attributes), tf.constant(versions, tf.int64))

  def upsert(self, ids, features, attributes, versions):
    """In-graph upsert: the towers (outside the lock), then `ItemIndex.upsert`
    (the version rule; slot allocation and one atomic `LinrWriteRows` over
    every store under the writer mutex). Returns each id's slot [M] int64
    after the write (-1: not applied and not in the index)."""
    result = self.index.upsert(ids, versions, attributes=attributes, **self._rows(features))
    with tf.control_dependencies([result.applied]):
      return tf.reshape(self.index.slot_of.lookup(ids), [-1])

  def snapshot(self):
    return self.index.read_rows()

  def search_slots(self, queries, filters, k):
    """(MaskedTopK of slots, the snapshot) for query embeddings [B, P, d]."""
    rows = self.index.read_rows()
    scores, slots, count = self.index.search(queries, tf.convert_to_tensor(filters, tf.string),
                                             k, snapshot=rows)
    return MaskedTopK(scores, slots, count), rows

  def search(self, query_features, filters, k):
    """(scores [B, k], item ids [B, k] ("" padding), count [B])."""
    q = self.model.query_embeddings(query_features)
    return self.index(q, tf.convert_to_tensor(filters, tf.string), k)
