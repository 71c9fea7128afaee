"""MoL live updates end to end: change events carrying [Q, d] rows + cluster
ids (or item features for the item tower) through the ingestor into a
`LiveIndex`, a snapshot, a restart that replays the durable log, all checked
against a pure-Python oracle and a numpy brute-force MoL; malformed MoL
events are dead-lettered with a reason naming the item and the shape; and
with MoL off the dot-product export keeps its signatures and stores."""

import json
import os

import numpy as np
import pytest

import linr_tf
import tensorflow as tf

from linr_tf import config as config_lib
from linr_tf import export as export_lib
from linr_tf import model as model_lib
from linr_tf import data as data_lib
from linr_tf import training
from linr_tf.index.live_index import LiveIndex
from linr_tf.ingest import deadletter
from linr_tf.ingest import events as ev
from linr_tf.ingest.ingestor import Ingestor
from linr_tf.ingest.local_log import LocalLogSource, LocalLogWriter
from linr_tf.mol.model import MoLRetrievalModel
from mol_integration_helpers import (ExportedMoL, catalog_attributes, nearest_cluster,
                                     unit_rows, write_config)
from mol_reference import assert_top_k_matches  # noqa: E402  (tests/ops/)

P, Q_CONTENT, D, CLUSTERS = 2, 2, 8, 8
Q = Q_CONTENT + 1
FILTERS = ["", 'lang = "en"', 'topic IN ("ai", "ml") AND type IN ("post", "article")']


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """A MoL model (towers untrained: no fit; k-means and the index built as
  model steps) exported as a SavedModel."""
  root = tmp_path_factory.mktemp("mol_live")
  data_dir = str(root / "data")
  data_lib.generate_feed(data_dir, num_users=60, num_items=300, seed=5)
  cfg = config_lib.load(write_config(str(root)))
  catalog, log = training.load_data(cfg, data_dir)
  tf.keras.utils.set_random_seed(0)
  model = MoLRetrievalModel.from_data(cfg, catalog, log)
  model.cluster_items(model_lib.item_features(cfg, catalog.columns), seed=0)
  model.build_index(catalog)
  path = export_lib.export(model, str(root / "export"))
  return {"root": root, "path": path, "model": model, "data_dir": data_dir,
          "attributes": catalog_attributes(data_dir)}


def _attrs(topic, lang, country, kind, age):
  return {"topic": topic, "lang": lang, "country": country, "type": kind, "age_hours": age}


def _stream(rng):
  """(events as JSON text, what the oracle expects: id -> (version, rows or
  None (item tower), cluster or None (nearest), raw attributes) or None
  (deleted), the item ids expected in the dead-letter log)."""
  r = unit_rows(rng, 6, (Q, D))
  a1 = _attrs("ai", "en", "us", "post", 3.0)
  a2 = _attrs("ml|cloud", "de", "gb", "article", 40.0)
  a3 = _attrs("sales", "en", "in", "video", 900.0)
  feats = {"topic": "ai|ml", "lang": "en", "country": "fr", "type": "post", "age_hours": 5.0}
  out = [
      ev.upsert_embedding("e1", 1, r[0], a1, 1.0, cluster_id=2),
      ev.upsert_embedding("e2", 1, r[1], a2, 1.0, cluster_id=5),
      ev.upsert("c1", 1, feats, 1.0),
      ev.upsert_embedding("p3", 2, r[2], a3, 1.0, cluster_id=0),   # replaces a catalogue item
      ev.delete("p4", 1, 1.0),
      ev.upsert_embedding("e1", 0, r[3], a3, 1.0, cluster_id=1),   # stale: dead letter
      ev.upsert_embedding("e1", 1, r[0], a1, 1.0, cluster_id=2),   # redelivery: duplicate
  ]
  text = [e.to_json() for e in out]
  bad = dict(item_id="bad1", version=1, op="upsert_embedding", event_time=1.0,
             payload={"embedding": r[4][:2].tolist(), "attributes": a1, "cluster_id": 1})
  text.append(json.dumps(bad))
  bad2 = dict(bad, item_id="bad2", payload={"embedding": r[4].tolist(), "attributes": a1})
  text.append(json.dumps(bad2))
  later = [
      ev.upsert_embedding("e2", 3, r[5], a1, 2.0, cluster_id=6),   # newer replace
      ev.update_attributes("e1", 2, a2, 2.0),
      ev.delete("p5", 1, 2.0),
  ]
  text += [e.to_json() for e in later]
  want = {"e1": (2, r[0], 2, a2), "e2": (3, r[5], 6, a1), "c1": (1, None, None, feats),
          "p3": (2, r[2], 0, a3), "p4": None, "p5": None}
  return text, want, {"e1", "bad1", "bad2"}


def _check_state(live, want, exported):
  """LiveIndex rows == the oracle; search == numpy MoL over those rows."""
  items = live.mol_items()
  ref = ExportedMoL(live.module)
  model = exported["model"]
  attributes = dict(exported["attributes"])
  for item, expect in want.items():
    if expect is None:
      assert item not in items, item
      continue
    version, rows, cluster, raw = expect
    got_version, got_rows, got_cluster = items[item]
    assert got_version == version, item
    if rows is None:       # the item tower, in-graph: == the model's towers + nearest cluster
      feats = {k: tf.constant([v], tf.float32 if k == "age_hours" else tf.string)
               for k, v in {**raw, "item_id": item}.items()}
      content = model.content_embeddings(feats).numpy()
      cluster = int(nearest_cluster(content, ref.centroids)[0])
      rows = model.item_embeddings(feats, tf.constant([cluster])).numpy()[0]
    np.testing.assert_allclose(got_rows, rows, atol=1e-6)
    assert got_cluster == cluster, item
    attributes[item] = {k: str(v) for k, v in raw.items()}
  assert len(items) == 300 + 3 - 2          # catalogue + e1, e2, c1 - p4, p5
  rng = np.random.default_rng(7)
  q = unit_rows(rng, 3, (P, D))
  q[0] = items["e2"][1][:P]
  scores, ids, count = live.search_embeddings(q, FILTERS, 15)
  want_top = ref.top_k(q, FILTERS, 15, attributes)
  assert_top_k_matches((scores, ref.slots_of(ids), count), want_top, rtol=1e-4, atol=1e-5)
  return items


def test_ingest_snapshot_and_replay(exported):
  root = exported["root"]
  text, want, dead = _stream(np.random.default_rng(0))
  log_dir, snaps = str(root / "log"), str(root / "snaps")
  with LocalLogWriter(log_dir) as writer:
    writer.append(text[:7])
  live = LiveIndex.load(exported["path"])
  ing = Ingestor(live, LocalLogSource(log_dir), snaps, snapshot_interval_s=1e9,
                 snapshot_every=10**9)
  ing.recover()
  while ing.poll(timeout_s=0.05):
    pass
  assert ing.snapshot(force=True)
  with LocalLogWriter(log_dir) as writer:
    writer.append(text[7:])
  while ing.poll(timeout_s=0.05):
    pass
  ing.close()
  counters = ing.metrics()
  assert counters["duplicate"] == 1 and counters["dead_lettered"] == 3
  reasons = {json.loads(r["event"])["item_id"]: r["reason"]
             for r in deadletter.read(os.path.join(snaps, "dead_letter.jsonl"))}
  assert set(reasons) == dead
  assert reasons["bad1"] == ("item 'bad1': embedding must be [3, 8] (Q = 3 lists of d = 8 "
                             "numbers), got a list of 2 lists")
  assert reasons["bad2"] == "item 'bad2': upsert_embedding needs cluster_id (an integer in [0, 8))"
  assert reasons["e1"].startswith("stale version 0")
  first = _check_state(live, want, exported)

  # Restart: a fresh copy of the export, the snapshot (taken mid-stream) and
  # a replay of the log after it give the same index.
  again = LiveIndex.load(exported["path"])
  ing2 = Ingestor(again, LocalLogSource(log_dir), snaps, snapshot_interval_s=1e9,
                  snapshot_every=10**9)
  ing2.recover()
  while ing2.poll(timeout_s=0.05):
    pass
  ing2.close()
  second = _check_state(again, want, exported)
  assert set(first) == set(second)
  for item in first:
    assert first[item][0] == second[item][0] and first[item][2] == second[item][2]
    np.testing.assert_array_equal(first[item][1], second[item][1])


def test_validator_rejects_bad_mol_rows(exported):
  live = LiveIndex.load(exported["path"])
  spec = ev.Spec.from_live(live)
  assert spec.embedding_shape == (Q, D) and spec.num_clusters == CLUSTERS
  check = ev.Validator(spec)
  attrs = _attrs("ai", "en", "us", "post", 3.0)
  good = np.ones((Q, D)).tolist()

  def event(embedding, **extra):
    payload = {"embedding": embedding, "attributes": attrs, **extra}
    return ev.Event("x1", 1, ev.UPSERT_EMBEDDING, 0.0, payload)

  ok = check.check(event(good, cluster_id=3))
  assert ok.payload["embedding"].shape == (Q, D) and ok.payload["cluster_id"] == 3
  cases = [
      (event(np.ones(D).tolist(), cluster_id=0),
       "item 'x1': embedding must be [3, 8] (Q = 3 lists of d = 8 numbers), got a list of 8 "
       "values"),
      (event([r[:7] for r in good], cluster_id=0),
       "item 'x1': embedding must be [3, 8] (Q = 3 lists of d = 8 numbers); row 0 has 7 numbers"),
      (event(good[:2] + [good[2][:7] + ["a"]], cluster_id=0),
       "item 'x1': embedding[2][7] is not a number: 'a'"),
      (event(good[:2] + [good[2][:7] + [float("inf")]], cluster_id=0),
       "item 'x1': embedding[2][7] = inf is not a finite float32"),
      (event(good, cluster_id=8), "item 'x1': cluster_id must be an integer in [0, 8), got 8"),
      (event(good, cluster_id=True), "item 'x1': cluster_id must be an integer in [0, 8), got True"),
      (event(good), "item 'x1': upsert_embedding needs cluster_id (an integer in [0, 8))"),
  ]
  for bad, message in cases:
    with pytest.raises(ev.BadEvent) as e:
      check.check(bad)
    assert str(e.value) == message
  # The envelope knows cluster_id only for upsert_embedding.
  with pytest.raises(ev.BadEvent, match=r"unknown key\(s\) \['cluster_id'\]"):
    ev.decode(json.dumps({"item_id": "x", "version": 1, "op": "update_attributes",
                          "event_time": 0.0, "payload": {"attributes": attrs,
                                                         "cluster_id": 1}}))


DOT_SIGNATURES = {
    "serving_default": {"user_id": ((None,), "string"), "filter": ((None,), "string"),
                        "k": ((), "int32")},
    "retrieve_with_options": {"user_id": ((None,), "string"), "filter": ((None,), "string"),
                              "k": ((), "int32"), "strategy": ((), "string")},
    "upsert_items": {"item_id": ((None,), "string"), "topic": ((None,), "string"),
                     "lang": ((None,), "string"), "country": ((None,), "string"),
                     "type": ((None,), "string"), "age_hours": ((None,), "float32"),
                     "version": ((None,), "int64")},
    "upsert_embeddings": {"item_id": ((None,), "string"), "version": ((None,), "int64"),
                          "embedding": ((None, 8), "float32"), "topic": ((None,), "string"),
                          "lang": ((None,), "string"), "country": ((None,), "string"),
                          "type": ((None,), "string"), "age_hours": ((None,), "float64")},
    "delete_items": {"item_id": ((None,), "string"), "version": ((None,), "int64")},
    "update_attributes": {"item_id": ((None,), "string"), "version": ((None,), "int64"),
                          "topic": ((None,), "string"), "lang": ((None,), "string"),
                          "country": ((None,), "string"), "type": ((None,), "string"),
                          "age_hours": ((None,), "float64")},
    "retrieve_embeddings": {"query_embedding": ((None, 8), "float32"),
                            "filter": ((None,), "string"), "k": ((), "int32")},
}


def test_mol_off_leaves_the_dot_export_as_it_was(exported, tmp_path):
  """Without `mol` the export has the signatures, inputs and row stores it
  had before MoL joined the product path (the table above is the export of
  commit e4b6605 on this config), no MoL store or cluster input, and its
  results are the dot product's (numpy)."""
  cfg = config_lib.load(write_config(str(tmp_path), mol=False))
  path = training.export_untrained(cfg, exported["data_dir"], str(tmp_path / "dot"), seed=0)
  loaded = linr_tf.load(path)
  assert list(loaded.signatures) == list(DOT_SIGNATURES)
  for name, want in DOT_SIGNATURES.items():
    got = {k: (tuple(v.shape.as_list()), v.dtype.name)
           for k, v in loaded.signatures[name].structured_input_signature[1].items()}
    assert got == want, name
  stores = sorted({name.split("/")[1] for name, _ in tf.train.list_variables(
      os.path.join(path, "variables", "variables")) if name.startswith("index/")})
  assert "mol_vectors" not in stores and "cluster_ids" not in stores and "mol_scorer" not in stores
  assert {"ids", "versions", "attributes", "vectors"} <= set(stores)
  live = LiveIndex(loaded)
  assert live.embedding_shape == (8,) and live.num_clusters == 0
  with pytest.raises(ValueError, match="no item clusters"):
    live.upsert_embeddings(["z"], [1], np.ones([1, 8], np.float32),
                           {"topic": ["ai"], "lang": ["en"], "country": ["us"],
                            "type": ["post"], "age_hours": [1.0]}, cluster_ids=[0])
  vectors = loaded.index.vectors.numpy().astype(np.float64)
  ids = np.array([i.decode() for i in loaded.index.ids.numpy()])
  q = unit_rows(np.random.default_rng(3), 2, (8,))
  scores, got_ids, count = live.search_embeddings(q, ["", ""], 10)
  full = q.astype(np.float64) @ vectors.T
  for b in range(2):
    order = np.lexsort((np.arange(len(ids)), -full[b]))[:10]
    np.testing.assert_allclose(scores[b], full[b, order], rtol=1e-5, atol=1e-6)
    assert [i.decode() for i in got_ids[b]] == list(ids[order])


def test_two_stage_without_clusters(exported, tmp_path):
  """`rerank_candidates` K' and no clusters: dot top-K' over each item's mean
  component, then the exact MoL rerank (numpy); no cluster_id anywhere."""
  cfg = config_lib.load(write_config(str(tmp_path), clusters=0, rerank_candidates=25))
  catalog, log = training.load_data(cfg, exported["data_dir"])
  tf.keras.utils.set_random_seed(1)
  model = MoLRetrievalModel.from_data(cfg, catalog, log)
  model.build_index(catalog)
  loaded = linr_tf.load(export_lib.export(model, str(tmp_path / "export")))
  assert "cluster_id" not in loaded.signatures["upsert_embeddings"].structured_input_signature[1]
  live = LiveIndex(loaded)
  assert live.embedding_shape == (Q_CONTENT, D) and live.num_clusters == 0
  spec = ev.Spec.from_live(live)
  with pytest.raises(ev.BadEvent, match="the model has no item clusters"):
    ev.Validator(spec).check(ev.upsert_embedding("x", 1, np.ones((Q_CONTENT, D)),
                                                 _attrs("ai", "en", "us", "post", 1.0), 0.0,
                                                 cluster_id=1))
  rows = unit_rows(np.random.default_rng(4), 2, (Q_CONTENT, D))
  live.upsert_embeddings(["n1", "n2"], [1, 1], rows,
                         {"topic": ["ai", "ml"], "lang": ["en", "en"], "country": ["us", "fr"],
                          "type": ["post", "post"], "age_hours": [1.0, 2.0]})
  ref = ExportedMoL(loaded)
  vectors = loaded.index.vectors.numpy().astype(np.float64)
  mean = ref.rows[ref.live].mean(axis=1)
  np.testing.assert_allclose(vectors[ref.live],
                             mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-6)
  q = unit_rows(np.random.default_rng(5), 2, (P, D))
  q[1] = rows[0, :P]
  filters = ["", 'lang = "en"']
  scores, ids, count = live.search_embeddings(q, filters, 10)
  attributes = dict(exported["attributes"],
                    n1=_attrs("ai", "en", "us", "post", 1.0), n2=_attrs("ml", "en", "fr", "post", 2.0))
  mol = ref.top_k(q, filters, ref.rows.shape[0], attributes)    # every passing slot, MoL order
  dots = q.mean(axis=1).astype(np.float64) @ vectors.T
  for b, f in enumerate(filters):
    passing = [s for s in np.flatnonzero(ref.live) if
               (lambda a: a["lang"] == "en" if f else True)(attributes[ref.ids[s]])]
    coarse = sorted(passing, key=lambda s: (-dots[b, s], s))[:25]
    full = {int(s): v for s, v in zip(mol[1][b], mol[0][b]) if s >= 0}
    best = sorted(coarse, key=lambda s: (-full[s], s))[:10]
    assert count[b] == 10
    assert list(ref.slots_of(ids)[b]) == best
    np.testing.assert_allclose(scores[b], [full[s] for s in best], rtol=1e-4, atol=1e-5)
