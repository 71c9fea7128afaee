"""`LiveIndex`: applies item changes to a served LiNR SavedModel, in process.

    live = LiveIndex.load("out/demo/export/1")
    live.upsert_items(["new-post"], [1], {"item_id": ["new-post"], "topic": ["ai"], ...})
    live.delete_items(["old-post"], [7])
    live.save_snapshot("out/snapshots/000042")     # variables + id tables
    scores, ids, count = live.search({"user_id": ["u1"]}, ['topic = "ai"'], k=10)

A thin numpy front end over the model's update signatures (`upsert_items`,
`upsert_embeddings`, `delete_items`, `update_attributes`; see `linr_tf.export`)
and its index state. Writes are checked here first (lengths, unique ids, NaN,
embedding width, unknown attribute values) so that a bad batch is rejected
with a ValueError naming the problem before anything is applied
(`linr_tf/index/checks.py`); the model checks again in-graph. Writes and
snapshots are serialized by a lock, so a snapshot always covers whole batches.
A Mixture-of-Logits model (`cfg.mol`) takes [n, Q, dim] rows and cluster ids
in `upsert_embeddings` (`embedding_shape`, `num_clusters`; `mol_items()`
reads them back) and [B, P, dim] queries in `search_embeddings`.
"""

import json
import os
import shutil
import tempfile
import threading
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from linr_tf import attributes as attributes_lib
from linr_tf import config as config_lib
from linr_tf.columns import ColumnSchema
from linr_tf.fsutil import fsync_dir, fsync_tree
from linr_tf.index import checks
from linr_tf.index.rows import RowLayout, Rows
from linr_tf.mol import checks as mol_checks

SNAPSHOT_PREFIX = "index"


class LiveIndex:
  """Numpy front end of a SavedModel's live-update signatures and index."""

  def __init__(self, module):
    """`module`: a loaded SavedModel (or an in-process `RetrievalModule`)."""
    self.module = module
    signatures = getattr(module, "signatures", None)
    # A loaded SavedModel has a dict; an in-process RetrievalModule a method.
    self._signatures = signatures() if callable(signatures) else signatures
    meta = json.loads(module.metadata.numpy().decode())
    # The model's own Config and schema, rebuilt (not re-parsed by hand).
    self.cfg = config_lib.from_dict(meta["config"])
    self.schema = attributes_lib.AttributeSchema(meta["bit_keys"])
    self.separator = self.cfg.separator
    self.item_features: List[config_lib.FeatureSpec] = list(self.cfg.item_features)
    self.query_features: List[config_lib.FeatureSpec] = list(self.cfg.query_features)
    self.item_id_feature = self.cfg.item_id_feature
    # Column attributes (exact numbers, value ids), when the model has them.
    meta_columns = meta.get("columns")
    self.columns = (ColumnSchema(meta_columns["numbers"], meta_columns["values"],
                                 meta_columns["vocabulary"]) if meta_columns else None)
    self.attributes: List[str] = self.schema.attributes + (
        self.columns.attributes if self.columns is not None else [])
    self.dim = int(self.cfg.embedding_dim)
    self._lock = threading.Lock()
    # Mixture-of-Logits (`mol` config section): items are [Q, dim] rows (+ a
    # cluster id with clusters), queries [P, dim].
    mol = self.cfg.mol
    self.num_clusters = int(mol.clusters) if mol else 0
    self.embedding_shape = ((mol.item_embeddings + (1 if mol.clusters else 0), self.dim)
                            if mol else (self.dim,))
    self.query_shape = (mol.query_embeddings, self.dim) if mol else (self.dim,)
    # The index's row layout, as `ItemIndex` builds it from the same config.
    self.layout = RowLayout.for_index(
        self.dim, self.schema.num_words, mol.vector_dtype if mol else self.cfg.index.vectors,
        self.cfg.index.code_bits // 32,
        code_factors=self.cfg.index.code_factors,
        number_columns=len(self.columns.numbers) if self.columns is not None else 0,
        value_width=self.columns.value_width if self.columns is not None else 0,
        rank_dense=len(self.cfg.ranking.dense_features) if self.cfg.ranking else 0,
        rank_ids=len(self.cfg.ranking.vocab_sizes) if self.cfg.ranking else 0,
        mol_components=self.embedding_shape[0] if mol else 0,
        mol_dtype=mol.vector_dtype if mol else "float32", cluster_ids=self.num_clusters > 0)
    index = module.index
    self.rows = Rows(**{n: getattr(index, n) for n in self.layout.names})

  @classmethod
  def load(cls, export_dir: str) -> "LiveIndex":
    import linr_tf  # pylint: disable=g-import-not-at-top  (loads the op library)
    return cls(linr_tf.load(export_dir))

  # --- checks ----------------------------------------------------------------

  def _attribute_columns(self, columns: Mapping[str, Sequence], n: int) -> Dict:
    out = checks.check_attribute_columns(self.schema, columns, n, self.separator)
    if self.columns is not None:
      out.update(checks.check_column_attributes(self.columns, columns, n, self.separator))
    return out

  def _signature(self, name):
    if self._signatures is not None and name in self._signatures:
      return self._signatures[name]
    raise ValueError(f"this model has no '{name}' signature (exported with a "
                     "searcher that cannot be updated?)")

  def _apply(self, name, inputs, return_previous):
    """`applied` bool [n], or (applied, previous_version int64 [n]) with
    `return_previous` (what each version was compared with, -1 = none; see
    ItemIndex.WriteResult)."""
    fn = self._signature(name)
    with self._lock:
      out = fn(**{k: tf.convert_to_tensor(v) for k, v in inputs.items()})
    applied = out["applied"].numpy()
    return (applied, out["previous_version"].numpy()) if return_previous else applied

  # --- writes ------------------------------------------------------------------

  def _rank_inputs(self, n, rank_dense, rank_ids, required):
    """Checked `rank_dense` / `rank_ids` for the model's ranking stores ({}
    without a ranker); an absent one is an error when `required`, else zeros
    (the upserts: set later by `update_rank_features`)."""
    out = {}
    for name, value, dtype in (("rank_dense", rank_dense, np.float32),
                               ("rank_ids", rank_ids, np.int64)):
      field = self.layout.field(name)
      if field is None:
        if value is not None:
          raise ValueError(f"this model has no {name} store (no ranking features)")
        continue
      width = field.row_shape[0]
      if value is None:
        if required:
          raise ValueError(f"missing {name} ([n, {width}])")
        value = np.zeros((n, width), dtype)
      value = np.asarray(value, dtype)
      if value.shape != (n, width):
        raise ValueError(f"{name} must be [{n}, {width}], got {list(value.shape)}")
      out[name] = value
    return out

  def upsert_items(self, item_ids, versions, features: Mapping[str, Sequence],
                   return_previous: bool = False, rank_dense=None, rank_ids=None):
    """Upserts items embedded by the item tower from their features (and,
    with a ranker, their ranking features: zeros when not given)."""
    ids, vers = checks.check_keys(item_ids, versions)
    inputs = {"version": vers, **self._rank_inputs(ids.size, rank_dense, rank_ids, False)}
    for spec in self.item_features:
      if spec.name not in features:
        raise ValueError(f"missing item feature '{spec.name}'")
      values = spec.column(features[spec.name])
      if values.size != ids.size:
        raise ValueError(f"item feature '{spec.name}' has {values.size} values, "
                         f"expected {ids.size}")
      if spec.is_numeric and not np.isfinite(values).all():
        raise ValueError(f"item feature '{spec.name}': NaN or Inf value")
      inputs[spec.name] = values
    if list(inputs[self.item_id_feature]) != list(ids):
      raise ValueError(f"item feature '{self.item_id_feature}' must equal item_ids")
    # Filter attributes that are no item feature come in `features` as well.
    missing = [a for a in self.attributes if a not in inputs and a not in features]
    if missing:
      raise ValueError(f"missing attribute column(s) {missing}")
    checked = self._attribute_columns(
        {a: inputs[a] if a in inputs else features[a] for a in self.attributes}, ids.size)
    inputs.update({a: v for a, v in checked.items() if a not in inputs})
    return self._apply("upsert_items", inputs, return_previous)

  def upsert_embeddings(self, item_ids, versions, embeddings,
                        attributes: Mapping[str, Sequence], return_previous: bool = False,
                        rank_dense=None, rank_ids=None, cluster_ids=None):
    """Upserts items with precomputed float32 [n, dim] embeddings (and, with
    a ranker, their ranking features: zeros when not given). A MoL model
    takes [n, Q, dim] rows and, with clusters, `cluster_ids` int [n] in
    [0, mol.clusters), written with the rows in one atomic write."""
    ids, vers = checks.check_keys(item_ids, versions)
    extra = {}
    if self.cfg.mol is not None:
      emb = mol_checks.check_item_rows(embeddings, self.embedding_shape, list(ids))
      clusters = mol_checks.check_cluster_ids(cluster_ids, self.num_clusters, list(ids))
      if clusters is not None:
        extra["cluster_id"] = clusters
    else:
      if cluster_ids is not None:
        raise ValueError("this model has no item clusters (not a MoL model)")
      emb = checks.check_embeddings(embeddings, self.dim, ids.size)
    inputs = {"item_id": ids, "version": vers, "embedding": emb, **extra,
              **self._attribute_columns(attributes, ids.size),
              **self._rank_inputs(ids.size, rank_dense, rank_ids, False)}
    return self._apply("upsert_embeddings", inputs, return_previous)

  def delete_items(self, item_ids, versions, return_previous: bool = False):
    ids, vers = checks.check_keys(item_ids, versions)
    return self._apply("delete_items", {"item_id": ids, "version": vers}, return_previous)

  def update_attributes(self, item_ids, versions, attributes: Mapping[str, Sequence],
                        return_previous: bool = False):
    ids, vers = checks.check_keys(item_ids, versions)
    inputs = {"item_id": ids, "version": vers,
              **self._attribute_columns(attributes, ids.size)}
    return self._apply("update_attributes", inputs, return_previous)

  def update_rank_features(self, item_ids, versions, rank_dense=None, rank_ids=None,
                           return_previous: bool = False):
    """Replaces the ranker's stored features of existing items (`linr_tf/ranking/`)."""
    ids, vers = checks.check_keys(item_ids, versions)
    inputs = {"item_id": ids, "version": vers,
              **self._rank_inputs(ids.size, rank_dense, rank_ids, True)}
    return self._apply("update_rank_features", inputs, return_previous)

  # --- state -------------------------------------------------------------------

  def save_snapshot(self, directory: str) -> str:
    """Writes the index state (row variables, id tables) to `directory`.

    Written to a temporary sibling and renamed, so `directory` either holds a
    whole snapshot or does not exist.
    """
    if os.path.exists(directory):
      raise ValueError(f"snapshot directory {directory} already exists")
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
      with self._lock:
        tf.train.Checkpoint(index=self.module.index).write(
            os.path.join(tmp, SNAPSHOT_PREFIX))
      fsync_tree(tmp)
      os.rename(tmp, directory)
      fsync_dir(parent)
    except BaseException:
      shutil.rmtree(tmp, ignore_errors=True)
      raise
    return directory

  def restore_snapshot(self, directory: str) -> None:
    """Replaces the index state with that of a `save_snapshot` directory."""
    path = os.path.join(directory, SNAPSHOT_PREFIX)
    if not tf.io.gfile.exists(path + ".index"):
      raise ValueError(f"{directory} holds no index snapshot")
    with self._lock:
      tf.train.Checkpoint(index=self.module.index).read(path).assert_existing_objects_matched()

  def items(self) -> Dict[str, Tuple[int, np.ndarray, np.ndarray]]:
    """Live items: id -> (version, embedding float32 [dim], attributes int32 [W])."""
    snap = self.layout.read(self.rows)
    ids, versions, attrs = (t.numpy() for t in (snap.ids, snap.versions, snap.attributes))
    vectors = snap.vectors.numpy() if snap.vectors is not None else None
    out = {}
    for slot in np.flatnonzero(attributes_lib.is_live(attrs)):
      emb = (vectors[slot].astype(np.float32) if vectors is not None
             else np.zeros([0], np.float32))
      out[ids[slot].decode()] = (int(versions[slot]), emb, attrs[slot].copy())
    return out

  def mol_items(self) -> Dict[str, Tuple[int, np.ndarray, int]]:
    """Live items of a MoL model: id -> (version, rows float32 [Q, dim],
    cluster id (-1 without clusters))."""
    if self.cfg.mol is None:
      raise ValueError("not a Mixture-of-Logits model (no `mol` config section)")
    snap = self.layout.read(self.rows)
    ids, versions, attrs = (t.numpy() for t in (snap.ids, snap.versions, snap.attributes))
    rows = snap.mol_vectors.numpy()
    clusters = snap.cluster_ids.numpy() if snap.cluster_ids is not None else None
    return {ids[s].decode(): (int(versions[s]), rows[s].astype(np.float32),
                              int(clusters[s]) if clusters is not None else -1)
            for s in np.flatnonzero(attributes_lib.is_live(attrs))}

  def item_columns(self) -> Dict[str, Dict[str, object]]:
    """Live items: id -> {column attribute: number (int or float) or sorted list
    of values}; {} per item without column attributes."""
    snap = self.layout.read(self.rows)
    ids, attrs = snap.ids.numpy(), snap.attributes.numpy()
    live = np.flatnonzero(attributes_lib.is_live(attrs))
    out = {ids[slot].decode(): {} for slot in live}
    if self.columns is None:
      return out
    keys, values = tf.raw_ops.LookupTableExportV2(
        table_handle=self.module.index.value_id_of.resource_handle,
        Tkeys=tf.string, Tvalues=tf.int64)
    value_of = {int(v): k.decode().partition("=")[2]
                for k, v in zip(keys.numpy(), values.numpy())}
    numbers = snap.numbers.numpy() if snap.numbers is not None else None
    value_ids = snap.value_ids.numpy() if snap.value_ids is not None else None
    for slot in live:
      row = out[ids[slot].decode()]
      for c, (a, dtype) in enumerate(self.columns.numbers.items()):
        word = np.int64(numbers[slot, c])
        row[a] = int(word) if dtype == "int64" else float(word.view(np.float64))
      for a in self.columns.values:
        begin, end = self.columns.value_range(a)
        row[a] = sorted(value_of[int(i)] for i in value_ids[slot, begin:end] if i >= 0)
    return out

  def tombstones(self) -> Dict[str, int]:
    """Deleted ids -> version of their delete."""
    keys, values = tf.raw_ops.LookupTableExportV2(
        table_handle=self.module.index.deleted.resource_handle,
        Tkeys=tf.string, Tvalues=tf.int64)
    return {k.decode(): int(v) for k, v in zip(keys.numpy(), values.numpy())}

  def search(self, query_features: Mapping[str, Sequence], filters, k: int):
    """(scores, item_ids, count) numpy, through `serving_default`."""
    fn = self._signature("serving_default")
    inputs = {s.name: tf.constant(s.column(query_features[s.name]))
              for s in self.query_features}
    batch = len(next(iter(inputs.values())))
    filters = [""] * batch if filters is None else list(filters)
    out = fn(filter=tf.constant(filters, tf.string), k=tf.constant(k, tf.int32), **inputs)
    return out["scores"].numpy(), out["item_ids"].numpy(), out["count"].numpy()

  def search_embeddings(self, queries, filters, k: int):
    """(scores, item_ids, count) numpy for float32 [B, dim] query embeddings
    ([B, P, dim] for a MoL model)."""
    queries = np.asarray(queries, np.float32)
    if self.cfg.mol is not None and queries.shape[1:] != tuple(self.query_shape):
      raise ValueError(f"query embeddings must be [B, {', '.join(map(str, self.query_shape))}], "
                       f"got {list(queries.shape)}")
    filters = [""] * len(queries) if filters is None else list(filters)
    out = self._signature("retrieve_embeddings")(
        query_embedding=tf.constant(queries), filter=tf.constant(filters, tf.string),
        k=tf.constant(k, tf.int32))
    return out["scores"].numpy(), out["item_ids"].numpy(), out["count"].numpy()
