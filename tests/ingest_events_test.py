"""Change events: JSON codec, validation reasons, round splitting, reference."""

import json
import math

import numpy as np
import pytest

from linr_tf.ingest import events as ev
from linr_tf.ingest import ingestor as ingestor_lib
import ingest_reference as ref_lib
from ingest_helpers import demo_schema, demo_spec

ATTRS = {"lang": "en", "topic": ["ai", "ml"], "type": "post", "age_hours": 3}


@pytest.fixture(scope="module")
def validator():
  return ev.Validator(demo_spec(dim=4))


def test_round_trip_every_op(validator):
  cases = [
      ev.upsert_embedding("a", 3, [0.5, 0, 1, -2], ATTRS, 10.5),
      ev.upsert("b", 1, {"topic": "ai|ml", "lang": "de", "type": "job",
                         "age_hours": 100.0}, 11.0),
      ev.delete("c", 9, 12.0),
      ev.update_attributes("a", 4, dict(ATTRS, lang="fr"), 13.0),
  ]
  for e in cases:
    text = e.to_json()
    assert "\n" not in text
    back = ev.decode(text)
    assert back == ev.decode(text.encode())
    assert back.item_id == e.item_id and back.version == e.version
    assert back.op == e.op and back.event_time == e.event_time
    validator.check(back)
  norm = validator.check(ev.decode(cases[0].to_json()))
  assert norm.payload["attributes"] == {"lang": "en", "topic": "ai|ml",
                                        "type": "post", "age_hours": 3.0}
  norm = validator.check(ev.decode(cases[1].to_json()))
  assert norm.payload["features"]["item_id"] == "b"   # id feature filled in
  assert norm.payload["features"]["age_hours"] == 100.0


def _reason(validator, obj):
  data = obj if isinstance(obj, (str, bytes)) else json.dumps(obj)
  with pytest.raises(ev.BadEvent) as info:
    ev.parse(data, validator)
  return str(info.value)


GOOD = {"item_id": "x", "version": 1, "op": "upsert_embedding",
        "event_time": 1.0,
        "payload": {"embedding": [1, 2, 3, 4], "attributes": ATTRS}}


def _with(**kw):
  d = json.loads(json.dumps(GOOD))
  for k, v in kw.items():
    if v is None:
      d.pop(k)
    else:
      d[k] = v
  return d


def _payload(**kw):
  d = json.loads(json.dumps(GOOD))
  d["payload"].update(kw)
  return d


@pytest.mark.parametrize("obj, reason", [
    ("{not json", "malformed JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ("[1, 2]", "must be a JSON object"),
    (_with(version=None), "missing field(s) ['version']"),
    (_with(item_id=None, op=None), "missing field(s) ['item_id', 'op']"),
    (_with(item_id=""), "item_id must be a non-empty string"),
    (_with(item_id=7), "item_id must be a non-empty string"),
    (_with(version="3"), "version must be an integer"),
    (_with(version=1.5), "version must be an integer"),
    (_with(version=True), "version must be an integer"),
    (_with(version=2**63), "out of range"),
    (_with(version=-1), "out of range"),
    (_payload(attributes=dict(ATTRS, age_hours=1e39)), "overflows float32"),
    ({"item_id": "x", "version": 1, "op": "upsert", "event_time": 1,
      "payload": {"features": dict(ATTRS, item_id="y")}},
     "differs from item_id"),
    (_with(op="merge"), "op must be one of"),
    (_with(event_time="now"), "event_time must be a finite number"),
    (_with(extra=1), "unknown field(s) ['extra']"),
    (_with(payload=None), "upsert_embedding needs a payload"),
    (_payload(embedding=[1, 2, 3]), "embedding has width 3, the index takes 4"),
    (_payload(embedding=[1, 2, 3, 4, 5]), "embedding has width 5"),
    (_payload(embedding=[1, 2, "3", 4]), "embedding[2] is not a number"),
    (_payload(embedding=[1, 2, float("nan"), 4]), "embedding[2] is nan"),
    (_payload(embedding=[1, float("inf"), 3, 4]), "embedding[1] is inf"),
    (_payload(embedding=[1, 2, 3, 1e39]), "overflows float32"),
    (_payload(attributes=dict(ATTRS, lang="xx")),
     "attribute 'lang': unknown value 'xx'"),
    (_payload(attributes=dict(ATTRS, topic="ai|cooking")),
     "attribute 'topic': unknown value 'cooking'"),
    (_payload(attributes=dict(ATTRS, age_hours=float("nan"))),
     "attribute 'age_hours' is nan"),
    (_payload(attributes=dict(ATTRS, age_hours="3")),
     "attribute 'age_hours' must be a number"),
    (_payload(attributes={"lang": "en"}), "missing attribute(s)"),
    (_payload(attributes=dict(ATTRS, colour="red")),
     "unknown attribute(s) ['colour']"),
    (_payload(attributes=dict(ATTRS, lang=3)), "must be a string"),
    ({"item_id": "x", "version": 1, "op": "delete", "event_time": 1,
      "payload": {"a": 1}}, "delete takes no payload"),
    ({"item_id": "x", "version": 1, "op": "upsert", "event_time": 1,
      "payload": {"features": {"lang": "en"}}}, "missing feature(s)"),
    ({"item_id": "x", "version": 1, "op": "upsert", "event_time": 1,
      "payload": {"features": dict(ATTRS, colour="r")}},
     "unknown feature(s) ['colour']"),
])
def test_bad_events_have_reasons(validator, obj, reason):
  assert reason in _reason(validator, obj)


def test_nan_in_raw_json_is_rejected(validator):
  text = json.dumps(GOOD).replace("[1, 2, 3, 4]", "[1, NaN, 3, 4]")
  assert "embedding[1] is nan" in _reason(validator, text)


def test_split_rounds_unique_ids_and_order():
  rng = np.random.default_rng(0)
  items = [(f"i{int(x)}", n) for n, x in enumerate(rng.integers(0, 20, 500))]
  rounds = ingestor_lib.split_rounds(items, key=lambda t: t[0])
  assert sum(map(len, rounds)) == len(items)
  for r in rounds:
    ids = [t[0] for t in r]
    assert len(ids) == len(set(ids))
  # Concatenating rounds keeps each id's order.
  per_id = {}
  for r in rounds:
    for item_id, n in r:
      per_id.setdefault(item_id, []).append(n)
  for item_id, ns in per_id.items():
    assert ns == sorted(ns)
    assert ns == [n for i, n in items if i == item_id]


def test_reference_version_semantics():
  schema = demo_schema()
  ref = ref_lib.ReferenceIndex()
  emb = lambda x: [x] * 4  # noqa: E731
  up = lambda i, v, x=1.0: ev.upsert_embedding(i, v, emb(x), ATTRS, 0)  # noqa: E731
  val = ev.Validator(demo_spec(4))
  check = lambda e: val.check(ev.decode(e.to_json()))  # noqa: E731
  assert ref.apply(check(up("a", 5)))
  assert not ref.apply(check(up("a", 5, 2.0)))            # equal: no-op
  assert not ref.apply(check(up("a", 4, 2.0)))            # older: stale
  assert ref.last_reason == "stale version 4: the item's last version is 5"
  assert ref.apply(check(ev.update_attributes("a", 6, dict(ATTRS, lang="de"), 0)))
  assert ref.items["a"].version == 6
  assert ref.items["a"].embedding[0] == 1.0               # embedding kept
  assert not ref.apply(check(ev.update_attributes("zz", 9, ATTRS, 0)))  # missing
  assert not ref.apply(check(ev.delete("a", 6, 0)))       # equal to current
  assert ref.apply(check(ev.delete("a", 8, 0)))
  assert "a" not in ref.items and ref.tombstones["a"] == 8
  assert not ref.apply(check(up("a", 7)))                 # older than tombstone
  assert not ref.apply(check(ev.update_attributes("a", 9, ATTRS, 0)))
  assert ref.apply(check(ev.delete("b", 3, 0)))           # delete of unknown id
  assert ref.tombstones["b"] == 3
  assert ref.apply(check(up("a", 9, 3.0)))
  assert "a" not in ref.tombstones and ref.items["a"].version == 9
  bits = ref.attribute_bits(ref.items["a"], schema, ["age_hours", "lang",
                                                     "topic", "type"])
  want = schema.encode({"lang": np.array(["en"]), "topic": np.array(["ai|ml"]),
                        "type": np.array(["post"]),
                        "age_hours": np.array([3.0])})[0]
  np.testing.assert_array_equal(bits, want)
  assert ref.counts == {"applied": 5, "duplicate": 2, "rejected": 4}
