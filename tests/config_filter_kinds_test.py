"""Filter kinds from the config: train + export + query over bitsets, value ids
and exact numbers, against numpy brute force; live updates through the
signatures with new value ids; config errors."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import linr_tf
from linr_tf import config as config_lib
from linr_tf import data as data_lib
from linr_tf import training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_ITEMS = 400
DIM = 16


def _config_dict():
  cfg = json.load(open(os.path.join(REPO, "configs", "demo.json"), encoding="utf-8"))
  cfg["item_features"].append({"name": "year", "type": "numeric", "embedding_dim": 4,
                               "boundaries": [1990, 2000]})
  cfg["filter_attributes"] = [
      "topic",                                          # auto: few values -> bitset
      {"name": "lang", "filter_kind": "bitset"},
      "country", "type",
      "age_hours",                                      # numeric feature: buckets
      {"name": "year", "filter_kind": "number"},        # exact float64
      "company",                                        # auto: > threshold -> value ids
      {"name": "author", "filter_kind": "value_ids"},   # multi-valued value ids
      {"name": "views", "filter_kind": "int64"},        # exact int64, no feature
  ]
  cfg["embedding_dim"] = DIM
  cfg["hidden_units"] = [32]
  cfg["index"] = {"value_ids_min_cardinality": 50}
  cfg["train"] = {"epochs": 1, "batch_size": 256, "seed": 7}
  return cfg


def _catalogue(data_dir, seed=5):
  """The synthetic feed plus company / author / year / views columns; returns
  the raw columns (numpy) for the brute-force reference."""
  data_lib.generate_feed(data_dir, num_users=150, num_items=NUM_ITEMS,
                         interactions_per_user=10, seed=seed)
  path = os.path.join(data_dir, "items.csv")
  with open(path, encoding="utf-8") as f:
    rows = list(csv.reader(f))
  rng = np.random.default_rng(seed)
  company = np.array([f"c{i}" for i in rng.integers(0, 120, NUM_ITEMS)], object)
  n_auth = rng.integers(0, 3, NUM_ITEMS)
  author = np.array(["|".join(sorted({f"a{j}" for j in rng.integers(0, 30, n)}))
                     for n in n_auth], object)
  year = rng.integers(1975, 2015, NUM_ITEMS)
  views = rng.integers(0, 10_000, NUM_ITEMS) * 1_000_003   # past float32 precision
  # Some past 2^53: 2^60 + 1, + 2, + 3 are one float64, distinct int64s.
  views[::5] = 2**60 + 1 + np.arange(len(views[::5])) % 3
  header = rows[0] + ["company", "author", "year", "views"]
  with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(header)
    for i, r in enumerate(rows[1:]):
      w.writerow(r + [company[i], author[i], int(year[i]), int(views[i])])
  cols = {h: np.array([r[j] for r in rows[1:]], object) for j, h in enumerate(rows[0])}
  cols.update(company=company, author=author, year=year.astype(np.float64), views=views)
  cols["age_hours"] = cols["age_hours"].astype(np.float64)
  return cols


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "linr_tf", *args], capture_output=True,
                        text=True, env=env, timeout=900, cwd=REPO)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("kinds")
  data_dir, run = str(root / "data"), str(root / "run")
  cols = _catalogue(data_dir)
  cfg_path = str(root / "kinds.json")
  with open(cfg_path, "w", encoding="utf-8") as f:
    json.dump(_config_dict(), f)
  res = _cli("train", f"--config={cfg_path}", f"--data_dir={data_dir}",
             f"--workdir={run}", "--verbose=0")
  assert res.returncode == 0, res.stderr[-3000:]
  res = _cli("export", f"--workdir={run}")
  assert res.returncode == 0, res.stderr[-3000:]
  path = os.path.join(run, "export", "1")
  model = training.restore(run)
  items = model.embed_items(training.load_data(model.cfg, data_dir)[0])
  return path, cols, model, items


# --- numpy reference ------------------------------------------------------------

def _values(cell):
  return set(v for v in str(cell).split("|") if v)


def _reference_mask(cols, text):
  """The filters of this file, evaluated in numpy (an independent evaluator)."""
  n = len(cols["item_id"])
  company, author = cols["company"], cols["author"]
  year, views, age = cols["year"], cols["views"], cols["age_hours"]
  topics = [_values(t) for t in cols["topic"]]
  ref = {
      'year >= 1993 AND company NOT IN ("c7")':
          (year >= 1993) & (company != "c7"),
      'author ALL ("a1", "a2") OR views > 5000000000':
          np.array([{"a1", "a2"} <= _values(a) for a in author]) | (views > 5_000_000_000),
      'lang = "en" AND age_hours < 24 AND year BETWEEN 1985 AND 1995':
          (cols["lang"] == "en") & (age < 24) & (year >= 1985) & (year <= 1995),
      'company IN ("c3", "c11", "zzz") AND NOT topic = "ai"':
          np.isin(company, ["c3", "c11"]) & np.array(["ai" not in t for t in topics]),
      'item_id NOT IN ("p0", "p1", "p2") AND year != 2000 AND author = "a4"':
          ~np.isin(cols["item_id"], ["p0", "p1", "p2"]) & (year != 2000)
          & np.array(["a4" in _values(a) for a in author]),
      'views <= 3000009 OR views = 9999029997':
          (views <= 3000009) | (views == 9999029997),
      "views = 1152921504606846978": views == 2**60 + 2,
      "": np.ones(n, bool),
  }
  return ref[text]


FILTERS = ['year >= 1993 AND company NOT IN ("c7")',
           'author ALL ("a1", "a2") OR views > 5000000000',
           'lang = "en" AND age_hours < 24 AND year BETWEEN 1985 AND 1995',
           'company IN ("c3", "c11", "zzz") AND NOT topic = "ai"',
           'item_id NOT IN ("p0", "p1", "p2") AND year != 2000 AND author = "a4"',
           'views <= 3000009 OR views = 9999029997',
           "views = 1152921504606846978",
           ""]


def _brute_force(queries, items, mask, k):
  scores = queries @ items.T
  out = []
  for b in range(len(queries)):
    s = np.where(mask[b], scores[b], -np.inf)
    order = np.argsort(-s, kind="stable")[:k]
    out.append([int(i) for i in order if np.isfinite(s[i])])
  return out


def test_config_kinds_choose_stores(setup):
  _, _, model, _ = setup
  assert set(model.columns.numbers) == {"year", "views"}
  assert model.columns.numbers["year"] == "float64" and model.columns.numbers["views"] == "int64"
  assert set(model.columns.values) == {"company", "author"}
  assert model.columns.values["author"] == 2
  assert set(model.schema.attributes) == {"topic", "lang", "country", "type", "age_hours"}


def test_cli_query_with_column_filters(setup):
  path, cols, _, _ = setup
  res = _cli("query", f"--model={path}", "--query=user_id=u3",
             '--filter=year >= 1993 AND company NOT IN ("c7")', "--k=20")
  assert res.returncode == 0, res.stderr[-3000:]
  got = [line.split()[1] for line in res.stdout.splitlines()
         if line.strip()[:1].isdigit() and ". " in line]
  assert len(got) == 20
  position = {p: i for i, p in enumerate(cols["item_id"])}
  mask = _reference_mask(cols, 'year >= 1993 AND company NOT IN ("c7")')
  assert all(mask[position[p]] for p in got)


def test_signatures_equal_brute_force(setup):
  path, cols, model, items = setup
  loaded = linr_tf.load(path)
  rng = np.random.default_rng(0)
  queries = rng.normal(size=(len(FILTERS), DIM)).astype(np.float32)
  k = 25
  out = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(queries), filter=tf.constant(FILTERS),
      k=tf.constant(k))
  mask = np.stack([_reference_mask(cols, f) for f in FILTERS])
  expected = _brute_force(queries.astype(np.float64), items.astype(np.float64), mask, k)
  ids = out["item_ids"].numpy()
  for b, f in enumerate(FILTERS):
    assert int(out["count"][b]) == len(expected[b]), f
    assert [x.decode() for x in ids[b][:len(expected[b])]] == \
        [cols["item_id"][i] for i in expected[b]], f
  # The query-feature signatures take the same filters.
  users = ["u1"] * len(FILTERS)
  for name, extra in (("serving_default", {}),
                      ("retrieve_with_options", {"strategy": tf.constant("mask")})):
    got = loaded.signatures[name](user_id=tf.constant(users), filter=tf.constant(FILTERS),
                                  k=tf.constant(k), **extra)
    q = model.query_tower({"user_id": tf.constant(users)}).numpy().astype(np.float64)
    ref = _brute_force(q, items.astype(np.float64), mask, k)
    for b in range(len(FILTERS)):
      got_ids = [x.decode() for x in got["item_ids"].numpy()[b][:int(got["count"][b])]]
      assert set(got_ids) == {cols["item_id"][i] for i in ref[b]}, (name, FILTERS[b])


def _attrs(cols, rows, **override):
  out = {"topic": [cols["topic"][i] for i in rows], "lang": [cols["lang"][i] for i in rows],
         "country": [cols["country"][i] for i in rows], "type": [cols["type"][i] for i in rows],
         "age_hours": [float(cols["age_hours"][i]) for i in rows],
         "year": [float(cols["year"][i]) for i in rows],
         "company": [cols["company"][i] for i in rows], "author": [cols["author"][i] for i in rows],
         "views": [int(cols["views"][i]) for i in rows]}
  out.update(override)
  dtypes = {"age_hours": tf.float64, "year": tf.float64, "views": tf.int64}
  return {a: tf.constant(v, dtypes.get(a, tf.string)) for a, v in out.items()}


def _search(loaded, filters, k=50):
  out = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.ones([len(filters), DIM]), filter=tf.constant(filters),
      k=tf.constant(k))
  return [sorted(x.decode() for x in out["item_ids"].numpy()[b][:int(out["count"][b])])
          for b in range(len(filters))]


def test_live_updates_with_new_value_ids(setup):
  path, cols, _, _ = setup
  loaded = linr_tf.load(path)
  sig = loaded.signatures
  assert _search(loaded, ['company = "brand-new"', 'author = "fresh"']) == [[], []]
  res = sig["upsert_embeddings"](
      item_id=tf.constant(["n1", "n2"]), version=tf.constant([1, 1], tf.int64),
      embedding=tf.ones([2, DIM]),
      **_attrs(cols, [0, 1], company=["brand-new", "c3"], author=["fresh|a1", ""],
               year=[2031.5, 1999.0], views=[2**60 + 1, 5]))
  assert res["applied"].numpy().tolist() == [True, True]
  got = _search(loaded, ['company = "brand-new"', 'author = "fresh" AND author = "a1"',
                         "year > 2031 AND views = 1152921504606846977",
                         'company = "c3" AND year = 1999 AND views < 6'])
  assert got == [["n1"], ["n1"], ["n1"], ["n2"]]
  # upsert_items: the tower embeds; company/author/views are inputs of their own.
  res = sig["upsert_items"](
      version=tf.constant([1], tf.int64), item_id=tf.constant(["n3"]),
      **{a: v for a, v in _attrs(cols, [2], company=["newer-co"], year=[2040.0]).items()
         if a not in ("age_hours", "year")},
      age_hours=tf.constant([1.0], tf.float32), year=tf.constant([2040.0], tf.float32))
  assert res["applied"].numpy().tolist() == [True]
  assert _search(loaded, ['company = "newer-co" AND year >= 2040']) == [["n3"]]
  # update_attributes moves n1 to yet another new company, atomically.
  res = sig["update_attributes"](
      item_id=tf.constant(["n1"]), version=tf.constant([2], tf.int64),
      **_attrs(cols, [0], company=["third-co"], author=["a9"], year=[1.0], views=[0]))
  assert res["applied"].numpy().tolist() == [True]
  assert _search(loaded, ['company = "brand-new"', 'company IN ("third-co") AND author = "a9"',
                          'author = "fresh"']) == [[], ["n1"], []]
  # Too many values for the width: a clear error naming the attribute, nothing written.
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"attribute \W*author\W*: an item holds more than 2 values"):
    sig["update_attributes"](
        item_id=tf.constant(["n1"]), version=tf.constant([3], tf.int64),
        **_attrs(cols, [0], author=["a1|a2|a3"]))
  assert _search(loaded, ['company = "third-co"']) == [["n1"]]
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"attribute \W*year\W*: NaN"):
    sig["update_attributes"](
        item_id=tf.constant(["n1"]), version=tf.constant([4], tf.int64),
        **_attrs(cols, [0], year=[float("nan")]))
  # The new ids stay dense and distinct: the table round-trips into a ColumnSchema.
  from linr_tf.columns import ColumnSchema
  from tensorflow.python.ops import gen_lookup_ops  # a restored table has no .export()
  keys, ids = gen_lookup_ops.lookup_table_export_v2(
      loaded.index.value_id_of.resource_handle, tf.string, tf.int64)
  schema = ColumnSchema.from_specs([s.decode() for s in loaded.index.number_columns.numpy()],
                                   [s.decode() for s in loaded.index.value_columns.numpy()],
                                   [k.decode() for k in keys.numpy()], ids.numpy())
  assert {"brand-new", "newer-co", "third-co"} <= set(schema.vocabulary("company"))
  assert int(loaded.index.next_value_id.numpy()) == schema.num_values


@pytest.mark.parametrize("change, message", [
    (lambda d: d.__setitem__("filter_attributes", [{"name": "lang", "filter_kind": "bits"}]),
     "filter attribute 'lang': unknown filter_kind 'bits'"),
    (lambda d: d.__setitem__("filter_attributes", [{"name": "age_hours",
                                                    "filter_kind": "value_ids"}]),
     "filter attribute 'age_hours': numeric feature"),
    (lambda d: d.__setitem__("filter_attributes", [{"name": "lang", "filter_kind": "number"}]),
     "filter attribute 'lang': categorical feature"),
    (lambda d: d.__setitem__("filter_kinds", {"nope": "bitset"}),
     "filter attribute 'nope': a filter_kind is given"),
    (lambda d: d.__setitem__("filter_attributes", [{"name": "x", "kind": "bitset"}]),
     r"filter_attributes\[0\] \('x'\): unknown keys \['kind'\]"),
    (lambda d: d.__setitem__("filter_attributes", [{"name": "company", "filter_kind": "buckets"}]),
     "filter attribute 'company': filter_kind 'buckets' needs a numeric item feature"),
    (lambda d: d.__setitem__("index", {"value_ids_min_cardinality": 0}),
     "index.value_ids_min_cardinality must be an integer >= 1"),
])
def test_config_errors(change, message):
  d = json.load(open(os.path.join(REPO, "configs", "demo.json"), encoding="utf-8"))
  change(d)
  with pytest.raises(ValueError, match=message):
    config_lib.from_dict(d)


def test_config_round_trip_and_default_threshold():
  d = _config_dict()
  cfg = config_lib.from_dict(d)
  assert cfg.filter_kinds == {"lang": "bitset", "year": "number", "author": "value_ids",
                              "views": "int64"}
  assert config_lib.from_dict(json.loads(cfg.to_json())) == cfg
  assert config_lib.IndexConfig().value_ids_min_cardinality - 1 == \
      __import__("linr_tf.filter_kinds", fromlist=["x"]).DEFAULT_BITSET_MAX_VALUES
  assert cfg.filter_kind("year") == "float64" and cfg.filter_kind("age_hours") == "buckets"
  assert cfg.filter_kind("company") is None


def _random_attributes(rng, cols, j):
  i = int(rng.integers(0, NUM_ITEMS))
  company = f"newco{int(rng.integers(0, 6))}" if rng.random() < 0.6 else str(cols["company"][i])
  authors = sorted({f"na{int(x)}" for x in rng.integers(0, 8, int(rng.integers(0, 3)))})
  return {"topic": str(cols["topic"][i]), "lang": str(cols["lang"][i]),
          "country": str(cols["country"][i]), "type": str(cols["type"][i]),
          "age_hours": float(cols["age_hours"][i]),
          "year": float(rng.integers(1950, 2050)) + 0.25 * (j % 4),
          "company": company, "author": authors,
          "views": int(rng.integers(0, 2**62)) + 2**62 * int(rng.integers(0, 2))}


def test_live_index_ingest_replay_and_snapshot(setup, tmp_path):
  """A change stream with value-id and exact-number fields, replayed by the
  ingestor, lands exactly (item_columns and filters vs a Python reference);
  a fresh LiveIndex recovers the same state from the snapshot."""
  from linr_tf.index.live_index import LiveIndex
  from linr_tf.ingest import ingestor as ingestor_lib
  from linr_tf.ingest import local_log
  path, cols, _, _ = setup
  rng = np.random.default_rng(11)
  ids = [f"n{i}" for i in range(8)] + ["p0", "p1"]
  version, state, events = {}, {}, []
  for j in range(80):
    item = ids[int(rng.integers(0, len(ids)))]
    if rng.random() < 0.15 and version.get(item) is not None:   # re-sent: a no-op
      events.append(events[-1])
      continue
    v = version.get(item, 0) + 1
    op = rng.choice(["upsert_embedding", "update_attributes", "delete"], p=[0.6, 0.25, 0.15])
    attrs = _random_attributes(rng, cols, j)
    payload = None
    if op == "upsert_embedding":
      payload = {"embedding": rng.normal(size=DIM).tolist(), "attributes": attrs}
    elif op == "update_attributes":
      payload = {"attributes": attrs}
    events.append(json.dumps({"item_id": item, "version": v, "op": str(op),
                              "event_time": 1.0, "payload": payload}))
    # Reference: the version rule over this stream (versions only grow here).
    catalogue_item = item in ("p0", "p1") and item not in version
    version[item] = v
    if op == "delete":
      state.pop(item, None)
    elif op == "upsert_embedding":
      state[item] = attrs
    elif item in state:
      state[item] = attrs
    elif catalogue_item:   # the exported catalogue holds p0, p1
      state[item] = attrs
  log_dir, snaps = str(tmp_path / "log"), str(tmp_path / "snaps")
  with local_log.LocalLogWriter(log_dir) as w:
    w.append(events)
  live = LiveIndex.load(path)
  ing = ingestor_lib.Ingestor(live, local_log.LocalLogSource(log_dir), snaps,
                              log_interval_s=1e9)
  ing.recover()
  metrics = ing.run(exit_when_idle_s=1.0)
  ing.close()
  # Only what the version rule refuses is dead-lettered (nothing about the kinds).
  if metrics["dead_lettered"]:
    with open(os.path.join(snaps, "dead_letter.jsonl"), encoding="utf-8") as f:
      reasons = {json.loads(line)["reason"] for line in f}
    assert reasons == {"update_attributes of an item that is not in the index"}, reasons

  def expected_columns(a):
    return {"year": a["year"], "views": a["views"], "company": [a["company"]],
            "author": sorted(a["author"])}

  def check(index):
    got = index.item_columns()
    for item in ids:
      if item in state:
        assert got[item] == expected_columns(state[item]), item
      else:
        assert item not in got, item
    filters = [f'company = "newco{c}"' for c in range(6)] + [
        "views >= 4611686018427387904", 'year > 2000.25 AND author IN ("na1", "na5")']
    refs = [lambda a, c=c: a["company"] == f"newco{c}" for c in range(6)] + [
        lambda a: a["views"] >= 2**62,
        lambda a: a["year"] > 2000.25 and bool({"na1", "na5"} & set(a["author"]))]
    _, found, count = index.search_embeddings(np.ones([len(filters), DIM], np.float32),
                                              filters, NUM_ITEMS + 20)
    for b, (f, ref) in enumerate(zip(filters, refs)):
      hits = {x.decode() for x in found[b][:count[b]]} & set(ids)
      assert hits == {i for i, a in state.items() if ref(a)}, f

  check(live)
  fresh = LiveIndex.load(path)
  ing2 = ingestor_lib.Ingestor(fresh, local_log.LocalLogSource(log_dir), snaps,
                               log_interval_s=1e9)
  ing2.recover()
  ing2.close()
  check(fresh)


def test_shipped_filter_kinds_config(tmp_path):
  """configs/filter_kinds.json over the synthetic feed: country as value ids,
  age_hours exact, the rest bitsets (no training: the schemas only)."""
  from linr_tf import model as model_lib
  cfg = config_lib.load(os.path.join(REPO, "configs", "filter_kinds.json"))
  data_lib.generate_feed(str(tmp_path), num_users=20, num_items=100, seed=2)
  catalog = data_lib.read_items(str(tmp_path / "items.csv"), cfg)
  bits, columns = model_lib.filter_schemas(cfg, catalog.columns)
  assert columns.numbers == {"age_hours": "float64"} and list(columns.values) == ["country"]
  assert bits.attributes == ["lang", "topic", "type"]
  assert sorted(columns.vocabulary("country")) == sorted(set(catalog.columns["country"]))
