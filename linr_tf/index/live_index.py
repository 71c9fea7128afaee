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
with a ValueError naming the problem before anything is applied; the model
checks again in-graph. Writes and snapshots are serialized by a lock, so a
snapshot always covers whole batches.
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
from linr_tf.fsutil import fsync_dir, fsync_tree
from linr_tf import ops

READY = True
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
    cfg = meta["config"]
    self.schema = attributes_lib.AttributeSchema(meta["bit_keys"])
    self.separator = cfg.get("separator", "|")
    self.item_features: List[Tuple[str, str]] = [
        (f["name"], f["type"]) for f in cfg["item_features"]]
    self.query_features: List[Tuple[str, str]] = [
        (f["name"], f["type"]) for f in cfg["query_features"]]
    self.item_id_feature = cfg["item_id_feature"]
    self.attributes: List[str] = self.schema.attributes
    self.dim = int(cfg["embedding_dim"])
    self._lock = threading.Lock()
    index = module.index
    self._row_variables = [index.ids, index.versions, index.attributes]
    self._vectors = getattr(index, "vectors", None)
    if self._vectors is not None:
      self._row_variables.append(self._vectors)

  @classmethod
  def load(cls, export_dir: str) -> "LiveIndex":
    import linr_tf  # pylint: disable=g-import-not-at-top  (loads the op library)
    return cls(linr_tf.load(export_dir))

  # --- checks ----------------------------------------------------------------

  def _keys(self, item_ids, versions):
    ids = np.asarray(item_ids, dtype=object).reshape(-1)
    try:
      vers = np.asarray(versions, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as e:
      raise ValueError(f"versions must be integers ({e})") from None
    if ids.size != vers.size:
      raise ValueError(f"{ids.size} item ids but {vers.size} versions")
    if any(not isinstance(i, (str, bytes)) or not i for i in ids):
      raise ValueError("item ids must be non-empty strings")
    if len(set(ids.tolist())) != ids.size:
      raise ValueError("item ids must be unique within one update")
    if (vers < 0).any():
      raise ValueError("versions must be >= 0")
    return ids, vers

  def _attribute_columns(self, columns: Mapping[str, Sequence], n: int) -> Dict:
    missing = [a for a in self.attributes if a not in columns]
    if missing:
      raise ValueError(f"missing attribute column(s) {missing}")
    out = {}
    numeric = self.schema.numeric_attributes
    for a in self.attributes:
      values = np.asarray(columns[a]).reshape(-1)
      if values.size != n:
        raise ValueError(f"attribute column '{a}' has {values.size} values, expected {n}")
      if a in numeric:
        try:
          values = values.astype(np.float64)
        except (TypeError, ValueError):
          raise ValueError(f"attribute '{a}': numeric values expected") from None
        if not np.isfinite(values).all():
          raise ValueError(f"attribute '{a}': NaN or Inf value")
      else:
        values = values.astype(object)
      out[a] = values
    # Unknown categorical values: the numpy encoder names attribute and value.
    self.schema.encode(out, self.separator)
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

  def upsert_items(self, item_ids, versions, features: Mapping[str, Sequence],
                   return_previous: bool = False):
    """Upserts items embedded by the item tower from their features."""
    ids, vers = self._keys(item_ids, versions)
    inputs = {"version": vers}
    for name, kind in self.item_features:
      if name not in features:
        raise ValueError(f"missing item feature '{name}'")
      values = np.asarray(features[name]).reshape(-1)
      if values.size != ids.size:
        raise ValueError(f"item feature '{name}' has {values.size} values, "
                         f"expected {ids.size}")
      inputs[name] = values.astype(np.float32 if kind == "numeric" else object)
    if list(inputs[self.item_id_feature]) != list(ids):
      raise ValueError(f"item feature '{self.item_id_feature}' must equal item_ids")
    self._attribute_columns({a: inputs[a] for a in self.attributes}, ids.size)
    for name, kind in self.item_features:
      if kind == "numeric" and not np.isfinite(inputs[name]).all():
        raise ValueError(f"item feature '{name}': NaN or Inf value")
    return self._apply("upsert_items", inputs, return_previous)

  def upsert_embeddings(self, item_ids, versions, embeddings,
                        attributes: Mapping[str, Sequence], return_previous: bool = False):
    """Upserts items with precomputed float32 [n, dim] embeddings."""
    ids, vers = self._keys(item_ids, versions)
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape != (ids.size, self.dim):
      raise ValueError(f"embeddings must be [{ids.size}, {self.dim}], got "
                       f"{list(emb.shape)}")
    if not np.isfinite(emb).all():
      raise ValueError("embeddings contain NaN or Inf")
    inputs = {"item_id": ids, "version": vers, "embedding": emb,
              **self._attribute_columns(attributes, ids.size)}
    return self._apply("upsert_embeddings", inputs, return_previous)

  def delete_items(self, item_ids, versions, return_previous: bool = False):
    ids, vers = self._keys(item_ids, versions)
    return self._apply("delete_items", {"item_id": ids, "version": vers}, return_previous)

  def update_attributes(self, item_ids, versions, attributes: Mapping[str, Sequence],
                        return_previous: bool = False):
    ids, vers = self._keys(item_ids, versions)
    inputs = {"item_id": ids, "version": vers,
              **self._attribute_columns(attributes, ids.size)}
    return self._apply("update_attributes", inputs, return_previous)

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
    snap = [t.numpy() for t in ops.read_rows(self._row_variables)]
    ids, versions, attrs = snap[:3]
    vectors = snap[3] if len(snap) > 3 else None
    out = {}
    for slot in np.flatnonzero((attrs[:, 0] & 1) != 0):
      emb = (vectors[slot].astype(np.float32) if vectors is not None
             else np.zeros([0], np.float32))
      out[ids[slot].decode()] = (int(versions[slot]), emb, attrs[slot].copy())
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
    inputs = {}
    for name, kind in self.query_features:
      values = np.asarray(query_features[name]).reshape(-1)
      inputs[name] = tf.constant(values.astype(np.float32 if kind == "numeric" else object))
    batch = len(next(iter(inputs.values())))
    filters = [""] * batch if filters is None else list(filters)
    out = fn(filter=tf.constant(filters, tf.string), k=tf.constant(k, tf.int32), **inputs)
    return out["scores"].numpy(), out["item_ids"].numpy(), out["count"].numpy()

  def search_embeddings(self, queries, filters, k: int):
    """(scores, item_ids, count) numpy for float32 [B, dim] query embeddings."""
    queries = np.asarray(queries, np.float32)
    filters = [""] * len(queries) if filters is None else list(filters)
    out = self._signature("retrieve_embeddings")(
        query_embedding=tf.constant(queries), filter=tf.constant(filters, tf.string),
        k=tf.constant(k, tf.int32))
    return out["scores"].numpy(), out["item_ids"].numpy(), out["count"].numpy()
