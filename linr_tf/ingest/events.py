"""Versioned change events: the JSON wire format and validation.

One event per record, a JSON object (never pickle):

    {"item_id": "p123", "version": 17, "op": "upsert_embedding",
     "event_time": 1767000000.25,
     "payload": {"embedding": [0.1, ...], "attributes": {"lang": "en", ...}}}

  item_id     non-empty string, the external item id
  version     int64 >= 0, per item; the contract's version semantics decide what
              applies (an older version never overwrites a newer one)
  op          "upsert"             payload {"features": {item feature: value}}:
                                   embedded by the item tower in the model; the
                                   filter attributes come from the same values
              "upsert_embedding"   payload {"embedding": [dim floats],
                                   "attributes": {attribute: value}}; a
                                   Mixture-of-Logits model takes Q lists of
                                   dim floats and, with clusters,
                                   "cluster_id" (an int in [0, clusters))
              "delete"             no payload (null or {})
              "update_attributes"  payload {"attributes": {attribute: value}}
  event_time  float seconds on the producer's clock (freshness is measured
              from it to the moment the item is searchable)

Categorical values are strings; a multi-valued one is a list of strings or one
string joined by the separator ("ai|ml"). Numeric values are finite numbers.
Value-id attributes (`company`) take any value (a new one gets an id in the
index); exact "int64" attributes take integers (JSON integers stay exact past
2^53), "float64" ones any finite number. A filter attribute that is no item
feature is given in `upsert`'s "features" too.
Every filter attribute must be given (attributes are replaced whole). In
`upsert`, the item id feature may be left out (it is `item_id`).

`decode(text)` parses and checks the shape of an event; `Validator(spec)`
checks it against the index (width, known attribute values, finiteness) and
returns the normalised event. Both raise `BadEvent(reason)`; the reason is
what the dead-letter log records.
"""

import dataclasses
import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

UPSERT = "upsert"
UPSERT_EMBEDDING = "upsert_embedding"
DELETE = "delete"
UPDATE_ATTRIBUTES = "update_attributes"
OPS = (UPSERT, UPSERT_EMBEDDING, DELETE, UPDATE_ATTRIBUTES)
FIELDS = ("item_id", "version", "op", "event_time")
INT64_MAX = 2**63 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)


def not_applied_reason(op: str, version: int, previous: int) -> Optional[str]:
  """Why a well-formed event did not apply, given the version it was compared
  with (-1 = none): None for a repeat of the applied version (a redelivery,
  counted as a duplicate), else the dead-letter reason (a stale, i.e.
  non-monotonic, version, or an attribute update of an item not in the index).
  """
  if previous == version:
    return None
  if op == UPDATE_ATTRIBUTES and previous < 0:
    return "update_attributes of an item that is not in the index"
  return f"stale version {version}: the item's last version is {previous}"


class BadEvent(ValueError):
  """A malformed or invalid event; str(e) is the reason."""


@dataclasses.dataclass(frozen=True)
class Event:
  item_id: str
  version: int
  op: str
  event_time: float
  payload: Optional[Dict[str, Any]] = None

  def to_dict(self) -> Dict[str, Any]:
    d = {"item_id": self.item_id, "version": int(self.version), "op": self.op,
         "event_time": float(self.event_time)}
    if self.payload is not None:
      d["payload"] = _jsonable(self.payload)
    return d

  def to_json(self) -> str:
    """One line of JSON (no newline inside)."""
    return json.dumps(self.to_dict(), separators=(",", ":"))


def _jsonable(x):
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.generic):
    return x.item()
  return x


def upsert(item_id, version, features, event_time) -> Event:
  return Event(item_id, int(version), UPSERT, float(event_time),
               {"features": dict(features)})


def upsert_embedding(item_id, version, embedding, attributes, event_time,
                     cluster_id=None) -> Event:
  """`embedding`: [dim] numbers, or [Q, dim] for a MoL model (with clusters,
  also `cluster_id`)."""
  payload = {"embedding": np.asarray(embedding, np.float64).tolist(),
             "attributes": dict(attributes)}
  if cluster_id is not None:
    payload["cluster_id"] = int(cluster_id)
  return Event(item_id, int(version), UPSERT_EMBEDDING, float(event_time), payload)


def delete(item_id, version, event_time) -> Event:
  return Event(item_id, int(version), DELETE, float(event_time), None)


def update_attributes(item_id, version, attributes, event_time) -> Event:
  return Event(item_id, int(version), UPDATE_ATTRIBUTES, float(event_time),
               {"attributes": dict(attributes)})


def _is_number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def decode(data) -> Event:
  """Parses one record (str or bytes) into an `Event`; BadEvent otherwise.

  Checks the envelope only (fields, types, op, payload shape); values are
  checked against the index by `Validator`.
  """
  if isinstance(data, (bytes, bytearray)):
    try:
      data = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
      raise BadEvent("not UTF-8") from None
  try:
    obj = json.loads(data)
  except (json.JSONDecodeError, RecursionError) as e:
    raise BadEvent(f"malformed JSON: {e}") from None
  if not isinstance(obj, dict):
    raise BadEvent(f"event must be a JSON object, got {type(obj).__name__}")
  missing = [f for f in FIELDS if f not in obj]
  if missing:
    raise BadEvent(f"missing field(s) {missing}")
  unknown = sorted(set(obj) - set(FIELDS) - {"payload"})
  if unknown:
    raise BadEvent(f"unknown field(s) {unknown}")
  item_id, version, op, event_time = (obj[f] for f in FIELDS)
  if not isinstance(item_id, str) or not item_id:
    raise BadEvent(f"item_id must be a non-empty string, got {item_id!r}")
  if "\x00" in item_id:
    raise BadEvent("item_id contains NUL")
  if not isinstance(version, int) or isinstance(version, bool):
    raise BadEvent(f"version must be an integer, got {version!r}")
  if not 0 <= version <= INT64_MAX:
    raise BadEvent(f"version {version} is out of range (0 .. 2^63 - 1)")
  if op not in OPS:
    raise BadEvent(f"op must be one of {', '.join(OPS)}, got {op!r}")
  if not _is_number(event_time) or not math.isfinite(event_time):
    raise BadEvent(f"event_time must be a finite number, got {event_time!r}")
  payload = obj.get("payload")
  if op == DELETE:
    if payload not in (None, {}):
      raise BadEvent("delete takes no payload")
    payload = None
  else:
    if not isinstance(payload, dict):
      raise BadEvent(f"{op} needs a payload object")
    need = {UPSERT: ("features",), UPSERT_EMBEDDING: ("embedding", "attributes"),
            UPDATE_ATTRIBUTES: ("attributes",)}[op]
    absent = [k for k in need if k not in payload]
    if absent:
      raise BadEvent(f"{op} payload is missing {absent}")
    optional = {UPSERT_EMBEDDING: ("cluster_id",)}.get(op, ())
    extra = sorted(set(payload) - set(need) - set(optional))
    if extra:
      raise BadEvent(f"{op} payload has unknown key(s) {extra}")
  return Event(item_id, version, op, float(event_time), payload)


@dataclasses.dataclass
class Spec:
  """What the index accepts: from a LiveIndex (`Spec.from_live`) or by hand."""
  dim: int
  schema: Any                       # linr_tf.attributes.AttributeSchema
  item_features: List[Any]          # linr_tf.config.FeatureSpec
  attributes: List[str]
  separator: str = "|"
  item_id_feature: Optional[str] = None   # must equal item_id (filled if absent)
  columns: Any = None               # linr_tf.columns.ColumnSchema (numbers, value ids)
  # Mixture-of-Logits: embeddings are [Q, dim] (None = [dim]); cluster ids
  # in [0, num_clusters) come with them when num_clusters > 0.
  embedding_shape: Optional[Tuple[int, ...]] = None
  num_clusters: int = 0

  @classmethod
  def from_live(cls, live) -> "Spec":
    shape = tuple(getattr(live, "embedding_shape", (int(live.dim),)))
    return cls(int(live.dim), live.schema, list(live.item_features),
               list(live.attributes), live.separator, live.item_id_feature,
               getattr(live, "columns", None), shape if len(shape) == 2 else None,
               int(getattr(live, "num_clusters", 0)))


class Validator:
  """Checks events against a `Spec`; `check(event)` -> normalised event.

  Normalised payloads: "features" / "attributes" map names to a str
  (multi-valued joined by the separator) or a float; "embedding" is a
  float32 array [dim]. Raises BadEvent with the reason otherwise.
  """

  def __init__(self, spec: Spec):
    self.spec = spec
    self.sep = spec.separator
    numeric = spec.schema.numeric_attributes
    self._numeric_attrs = set(numeric)
    self._known: Dict[str, set] = {a: set(spec.schema.values(a))
                                   for a in spec.schema.categorical_attributes}
    # Column attributes: exact numbers ("int64" / "float64") and value ids
    # (any value: a new one gets an id in the index).
    self._exact = dict(spec.columns.numbers) if spec.columns is not None else {}
    value_attrs = list(spec.columns.values) if spec.columns is not None else []
    self._known.update({a: None for a in value_attrs})
    self._attrs = list(spec.attributes)
    for a in self._attrs:
      if a not in self._known and a not in self._numeric_attrs and a not in self._exact:
        raise ValueError(f"attribute '{a}' is not in the schema")
    self._features = {f.name: f for f in spec.item_features}
    # Filter attributes that are no item feature: "upsert" events carry them
    # in "features" too.
    self._extra = [a for a in self._attrs if a not in self._features]

  def check(self, event: Event) -> Event:
    p = event.payload
    if event.op == DELETE:
      return event
    if event.op == UPSERT_EMBEDDING:
      if self.spec.embedding_shape is not None:
        payload = {"embedding": self._rows(p["embedding"], event.item_id),
                   **self._cluster(p, event.item_id)}
      else:
        if "cluster_id" in p:
          raise BadEvent("cluster_id given, but the model has no item clusters")
        payload = {"embedding": self._embedding(p["embedding"])}
      payload["attributes"] = self._attributes(p["attributes"])
    elif event.op == UPDATE_ATTRIBUTES:
      payload = {"attributes": self._attributes(p["attributes"])}
    else:
      payload = {"features": self._item_features(p["features"], event.item_id)}
    return dataclasses.replace(event, payload=payload)

  def _embedding(self, values) -> np.ndarray:
    if not isinstance(values, list):
      raise BadEvent(f"embedding must be a list of {self.spec.dim} numbers")
    if len(values) != self.spec.dim:
      raise BadEvent(f"embedding has width {len(values)}, the index takes "
                     f"{self.spec.dim}")
    for i, x in enumerate(values):
      if type(x) is not float and (type(x) is not int):  # not bool, not str
        if not _is_number(x):
          raise BadEvent(f"embedding[{i}] is not a number: {x!r}")
    arr = np.asarray(values, np.float64)
    bad = np.flatnonzero(~np.isfinite(arr) | (np.abs(arr) > FLOAT32_MAX))
    if bad.size:
      i = int(bad[0])
      x = values[i]
      if not math.isfinite(x):
        raise BadEvent(f"embedding[{i}] is {x} (must be finite)")
      raise BadEvent(f"embedding[{i}] = {x} overflows float32")
    return arr.astype(np.float32)

  def _rows(self, values, item_id) -> np.ndarray:
    """A MoL item's [Q, dim] rows: Q lists of dim finite numbers."""
    q, d = self.spec.embedding_shape
    want = f"[{q}, {d}] (Q = {q} lists of d = {d} numbers)"
    if not isinstance(values, list) or len(values) != q:
      got = (f"a list of {len(values)} "
             + ("lists" if all(isinstance(r, list) for r in values) else "values")
             if isinstance(values, list) else type(values).__name__)
      raise BadEvent(f"item {item_id!r}: embedding must be {want}, got {got}")
    for j, row in enumerate(values):
      if not isinstance(row, list) or len(row) != d:
        got = f"{len(row)} numbers" if isinstance(row, list) else repr(row)[:40]
        raise BadEvent(f"item {item_id!r}: embedding must be {want}; row {j} has {got}")
      for i, x in enumerate(row):
        if not _is_number(x):
          raise BadEvent(f"item {item_id!r}: embedding[{j}][{i}] is not a number: {x!r}")
    arr = np.asarray(values, np.float64)
    bad = np.argwhere(~np.isfinite(arr) | (np.abs(arr) > FLOAT32_MAX))
    if bad.size:
      j, i = (int(v) for v in bad[0])
      raise BadEvent(f"item {item_id!r}: embedding[{j}][{i}] = {values[j][i]} is not a finite "
                     "float32")
    return arr.astype(np.float32)

  def _cluster(self, payload, item_id) -> Dict[str, int]:
    """{"cluster_id": c} of a MoL upsert_embedding ({} without clusters)."""
    c = self.spec.num_clusters
    if not c:
      if "cluster_id" in payload:
        raise BadEvent(f"item {item_id!r}: cluster_id given, but the model has no item clusters")
      return {}
    if "cluster_id" not in payload:
      raise BadEvent(f"item {item_id!r}: upsert_embedding needs cluster_id (an integer in "
                     f"[0, {c}))")
    v = payload["cluster_id"]
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < c:
      raise BadEvent(f"item {item_id!r}: cluster_id must be an integer in [0, {c}), got {v!r}")
    return {"cluster_id": int(v)}

  def _categorical(self, what, value, known: Optional[set]) -> str:
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
      if not isinstance(v, str):
        raise BadEvent(f"{what} must be a string or a list of strings, got "
                       f"{v!r}")
      parts = v.split(self.sep) if isinstance(value, str) else [v]
      if not isinstance(value, str) and self.sep in v:
        raise BadEvent(f"{what}: list value {v!r} contains the separator "
                       f"{self.sep!r}")
      for part in parts:
        if known is not None and part and part not in known:
          raise BadEvent(f"{what}: unknown value {part!r}")
        if "\x00" in part:
          raise BadEvent(f"{what}: value contains NUL")
      out.extend(parts)
    return self.sep.join(out)

  def _numeric(self, what, value) -> float:
    if not _is_number(value):
      raise BadEvent(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
      raise BadEvent(f"{what} is {value} (must be finite)")
    if abs(value) > FLOAT32_MAX:
      raise BadEvent(f"{what} = {value} overflows float32")
    return float(value)

  def _attributes(self, attrs) -> Dict[str, Any]:
    if not isinstance(attrs, dict):
      raise BadEvent("attributes must be an object")
    missing = [a for a in self._attrs if a not in attrs]
    if missing:
      raise BadEvent(f"missing attribute(s) {missing}")
    unknown = sorted(set(attrs) - set(self._attrs))
    if unknown:
      raise BadEvent(f"unknown attribute(s) {unknown}")
    out = {}
    for a in self._attrs:
      out[a] = self._attribute(a, attrs[a])
    return out

  def _attribute(self, a, value):
    what = f"attribute '{a}'"
    if a in self._exact:
      return self._exact_number(what, value, self._exact[a])
    if a in self._numeric_attrs:
      return self._numeric(what, value)
    return self._categorical(what, value, self._known[a])

  def _exact_number(self, what, value, dtype):
    """An exact number: int for "int64" (integers only), float for "float64"."""
    if not _is_number(value):
      raise BadEvent(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
      raise BadEvent(f"{what} is {value} (must be finite)")
    if dtype == "int64":
      if isinstance(value, float) and not value.is_integer():
        raise BadEvent(f"{what} = {value} is not an integer (an int64 attribute)")
      if not -2**63 <= int(value) < 2**63:
        raise BadEvent(f"{what} = {value} overflows int64")
      return int(value)
    return float(value)

  def _item_features(self, feats, item_id) -> Dict[str, Any]:
    if not isinstance(feats, dict):
      raise BadEvent("features must be an object")
    unknown = sorted(set(feats) - set(self._features) - set(self._extra))
    if unknown:
      raise BadEvent(f"unknown feature(s) {unknown}")
    out = {}
    missing = []
    for a in self._extra:
      if a not in feats:
        missing.append(a)
        continue
      out[a] = self._attribute(a, feats[a])
    id_feature = self.spec.item_id_feature
    if id_feature in feats and feats[id_feature] != item_id:
      raise BadEvent(f"feature '{id_feature}' = {feats[id_feature]!r} differs "
                     f"from item_id {item_id!r}")
    for name, feature in self._features.items():
      what = f"feature '{name}'"
      if name not in feats:
        if name == id_feature or (id_feature is None and feature.type == "id"):
          out[name] = item_id
          continue
        missing.append(name)
        continue
      value = feats[name]
      if feature.is_numeric:
        out[name] = self._numeric(what, value)
      else:
        known = self._known.get(name) if name in self._attrs else None
        out[name] = self._categorical(what, value, known)
    if missing:
      raise BadEvent(f"missing feature(s) {missing}")
    return out


def parse(data, validator: Validator) -> Event:
  """decode + check: a normalised event, or BadEvent(reason)."""
  return validator.check(decode(data))


def attribute_columns(events: Sequence[Event], attributes: Sequence[str],
                      numeric: set, key: str = "attributes"
                      ) -> Dict[str, np.ndarray]:
  """Columns for the LiveIndex write methods from normalised events."""
  cols = {}
  for a in attributes:
    vals = [e.payload[key][a] for e in events]
    # Python ints of int64 attributes stay exact in an object column.
    cols[a] = (np.asarray(vals, np.float64) if a in numeric
               else np.asarray(vals, dtype=object))
  return cols
