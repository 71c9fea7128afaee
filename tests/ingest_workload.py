"""A change-stream workload for the ingestor tests: valid events of every op,
re-ordered versions, verbatim duplicates, and malformed records of every kind.

`make_workload` returns entries that are either dicts (an event; the producer
stamps `event_time` when it publishes) or `Raw` strings written as they are.
"""

import dataclasses
import json
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Raw:
  text: str


MALFORMED_KINDS = ("bad_json", "missing_field", "wrong_width", "nan",
                   "unknown_value", "bad_op", "bad_version_type",
                   "nan_numeric", "missing_attribute", "inf_embedding")


def _categorical_values(schema) -> Dict[str, List[str]]:
  out = {}
  for key in schema.keys[1:]:
    if "=" in key and "@" not in key.split("=", 1)[0]:
      attr, value = key.split("=", 1)
      out.setdefault(attr, []).append(value)
  return out


def make_workload(n_events: int, base_ids: Sequence[str], n_new_ids: int,
                  spec, seed: int = 0, malformed_rate: float = 0.01,
                  duplicate_rate: float = 0.03, reorder_rate: float = 0.05
                  ) -> List:
  """Events over base_ids + n_new_ids new ids (skewed: some ids are hot).

  Op mix: 55% upsert_embedding, 10% upsert (item features), 15% delete,
  20% update_attributes. Versions per id go up by 1-3; `reorder_rate` of the
  events are swapped with a later one (so older versions arrive late);
  `duplicate_rate` are re-sent verbatim later; `malformed_rate` are broken.
  """
  rng = np.random.default_rng(seed)
  ids = list(base_ids) + [f"new{i:05d}" for i in range(n_new_ids)]
  values = _categorical_values(spec.schema)
  numeric = set(spec.schema.numeric_attributes)
  features = {f.name: f.type for f in spec.item_features}
  versions = {}
  weights = 1.0 / np.arange(1, len(ids) + 1) ** 0.6
  weights /= weights.sum()
  order = rng.permutation(len(ids))

  def attributes():
    out = {}
    for a in spec.attributes:
      if a in numeric:
        out[a] = float(np.round(rng.uniform(0, 400), 2))
      else:
        vs = values[a]
        k = 1 if rng.random() < 0.7 else 2
        pick = list(rng.choice(vs, size=min(k, len(vs)), replace=False))
        out[a] = pick if len(pick) > 1 else pick[0]
    return out

  def embedding():
    v = rng.normal(size=spec.dim)
    return [float(x) for x in (v / np.linalg.norm(v)).astype(np.float32)]

  def item_features():
    out = {}
    for name, kind in features.items():
      if kind == "id":
        continue
      if kind == "numeric":
        out[name] = float(np.round(rng.uniform(0, 400), 2))
      elif name in values:
        out[name] = str(rng.choice(values[name]))
      else:
        out[name] = f"v{int(rng.integers(0, 50))}"
    return out

  events: List = []
  for _ in range(n_events):
    item_id = ids[order[int(rng.choice(len(ids), p=weights))]]
    version = versions.get(item_id, 0) + int(rng.integers(1, 4))
    versions[item_id] = version
    u = rng.random()
    base = {"item_id": item_id, "version": version, "event_time": None}
    if u < 0.55:
      base.update(op="upsert_embedding", payload={
          "embedding": embedding(), "attributes": attributes()})
    elif u < 0.65:
      base.update(op="upsert", payload={"features": item_features()})
    elif u < 0.80:
      base.update(op="delete")
    else:
      base.update(op="update_attributes",
                  payload={"attributes": attributes()})
    events.append(base)
  # Re-order: swap some events with one a little later.
  for i in np.flatnonzero(rng.random(len(events)) < reorder_rate):
    j = min(len(events) - 1, i + int(rng.integers(1, 50)))
    events[i], events[j] = events[j], events[i]
  # Duplicates (verbatim redelivery by the producer) a little later.
  out: List = []
  pending: List[Tuple[int, dict]] = []
  for n, e in enumerate(events):
    out.append(e)
    if rng.random() < duplicate_rate:
      pending.append((n + int(rng.integers(1, 200)), e))
    while pending and pending[0][0] <= n:
      out.append(pending.pop(0)[1])
      pending.sort(key=lambda t: t[0])
  out.extend(e for _, e in pending)
  # Malformed records, each kind in turn, at random places.
  n_bad = max(len(MALFORMED_KINDS), int(len(out) * malformed_rate))
  for m in range(n_bad):
    kind = MALFORMED_KINDS[m % len(MALFORMED_KINDS)]
    pos = int(rng.integers(0, len(out) + 1))
    out.insert(pos, malformed(kind, rng, spec, values, numeric, attributes,
                              embedding))
  return out


def malformed(kind, rng, spec, values, numeric, attributes, embedding):
  item_id = f"bad{int(rng.integers(0, 10**6))}"
  good = {"item_id": item_id, "version": 1, "op": "upsert_embedding",
          "event_time": None,
          "payload": {"embedding": embedding(), "attributes": attributes()}}
  if kind == "bad_json":
    return Raw('{"item_id": "' + item_id + '", "version": 1, "op": ')
  if kind == "missing_field":
    good.pop(["item_id", "version", "op"][int(rng.integers(0, 3))])
  elif kind == "wrong_width":
    good["payload"]["embedding"] = good["payload"]["embedding"][:-1]
  elif kind == "nan":
    good["payload"]["embedding"][0] = float("nan")
  elif kind == "inf_embedding":
    good["payload"]["embedding"][1] = float("inf")
  elif kind == "unknown_value":
    cat = [a for a in spec.attributes if a not in numeric]
    good["payload"]["attributes"][cat[0]] = "no-such-value"
  elif kind == "bad_op":
    good["op"] = "merge"
  elif kind == "bad_version_type":
    good["version"] = "7"
  elif kind == "nan_numeric":
    num = [a for a in spec.attributes if a in numeric]
    good["payload"]["attributes"][num[0]] = float("nan")
  elif kind == "missing_attribute":
    good["payload"]["attributes"].pop(spec.attributes[0])
  return good


def render(entry, now: float) -> str:
  """The record text of a workload entry, stamped with `now`."""
  if isinstance(entry, Raw):
    return entry.text
  d = dict(entry)
  if "event_time" in d:
    d["event_time"] = now
  return json.dumps(d, separators=(",", ":"))
