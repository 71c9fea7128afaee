"""Pure-Python replay of a change stream under the contract's version semantics.

The oracle the crash test compares the live index with: replay every record of
the stream once, in order, from the exported index's initial state.

  last(id)  = the item's version if it exists, else its tombstone, else none
  upsert / upsert_embedding v   applies iff last(id) is none or v > last(id)
  delete v                      applies iff last(id) is none or v > last(id):
                                item removed (if present), tombstone = v
  update_attributes v           applies iff the item exists and v > version:
                                attributes replaced, embedding kept
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np

from linr_tf.ingest import events as ev


@dataclasses.dataclass
class RefItem:
  version: int
  embedding: Optional[np.ndarray]      # None: made by the tower from `features`
  features: Optional[Dict[str, Any]]   # upsert features (normalised)
  attributes: Any                      # dict attr -> value, or bits np.int32[W]


class ReferenceIndex:
  """Items and tombstones after replaying events (no TensorFlow)."""

  def __init__(self, items: Optional[Dict[str, Tuple]] = None,
               tombstones: Optional[Dict[str, int]] = None):
    """`items`: id -> (version, embedding, attribute bits), e.g. live.items()."""
    self.items: Dict[str, RefItem] = {}
    for item_id, (version, emb, bits) in (items or {}).items():
      self.items[item_id] = RefItem(int(version), np.asarray(emb, np.float32),
                                    None, np.asarray(bits, np.int32))
    self.tombstones: Dict[str, int] = {k: int(v) for k, v in
                                       (tombstones or {}).items()}
    self.counts = {"applied": 0, "duplicate": 0, "rejected": 0}
    self.last_reason: Optional[str] = None   # why the last event did not apply

  def last(self, item_id) -> Optional[int]:
    item = self.items.get(item_id)
    if item is not None:
      return item.version
    return self.tombstones.get(item_id)

  def apply(self, e: ev.Event) -> bool:
    """Applies one normalised event; True if it changed the index. Otherwise
    `last_reason` is None for a repeat of the current version (duplicate) or
    the dead-letter reason."""
    ok = self._apply(e)
    self.last_reason = None
    if ok:
      self.counts["applied"] += 1
      return True
    if e.op == ev.UPDATE_ATTRIBUTES:
      item = self.items.get(e.item_id)
      previous = -1 if item is None else item.version
    else:
      last = self.last(e.item_id)
      previous = -1 if last is None else last
    self.last_reason = ev.not_applied_reason(e.op, e.version, previous)
    self.counts["duplicate" if self.last_reason is None else "rejected"] += 1
    return False

  def _apply(self, e: ev.Event) -> bool:
    last = self.last(e.item_id)
    if e.op == ev.UPDATE_ATTRIBUTES:
      item = self.items.get(e.item_id)
      if item is None or e.version <= item.version:
        return False
      item.version = e.version
      item.attributes = dict(e.payload["attributes"])
      return True
    if last is not None and e.version <= last:
      return False
    if e.op == ev.DELETE:
      self.items.pop(e.item_id, None)
      self.tombstones[e.item_id] = e.version
      return True
    self.tombstones.pop(e.item_id, None)
    if e.op == ev.UPSERT_EMBEDDING:
      self.items[e.item_id] = RefItem(
          e.version, np.asarray(e.payload["embedding"], np.float32), None,
          dict(e.payload["attributes"]))
    else:
      self.items[e.item_id] = RefItem(e.version, None,
                                      dict(e.payload["features"]), None)
    return True

  def attribute_bits(self, item: RefItem, schema, attributes, separator="|"
                     ) -> np.ndarray:
    """Expected bitset row of an item (encoded with the index's schema)."""
    if isinstance(item.attributes, np.ndarray):
      return item.attributes
    source = item.attributes if item.attributes is not None else item.features
    numeric = set(schema.numeric_attributes)
    cols = {a: (np.asarray([source[a]], np.float64) if a in numeric
                else np.asarray([source[a]], dtype=object))
            for a in attributes}
    return schema.encode(cols, separator)[0]


def replay(records, validator: ev.Validator, reference: ReferenceIndex):
  """Replays raw records in order; returns {offset: dead-letter reason} of the
  malformed records and of the well-formed ones that were rejected."""
  bad = {}
  for offset, data in records:
    try:
      e = ev.parse(data, validator)
    except ev.BadEvent as err:
      bad[offset] = str(err)
      continue
    if not reference.apply(e) and reference.last_reason is not None:
      bad[offset] = reference.last_reason
  return bad
