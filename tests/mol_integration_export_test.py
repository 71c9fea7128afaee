"""MoL as a configuration of the one product path: `linr_tf train / export /
query` on a config with a `mol` section, then the SavedModel's signatures
(serving_default with filters and k, retrieve_embeddings, upsert_items with
an in-graph nearest cluster for cold items, upsert_embeddings with [Q, d]
rows + cluster id, delete_items) checked against a numpy brute-force MoL
over the exported variables."""

import contextlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest

import linr_tf
import tensorflow as tf

from linr_tf import cli
from linr_tf import data as data_lib
from linr_tf import training
from linr_tf.index.live_index import LiveIndex
from mol_integration_helpers import (REPO, ExportedMoL, catalog_attributes, nearest_cluster,
                                     unit_rows, write_config)
from mol_reference import assert_top_k_matches  # noqa: E402  (tests/ops/)

P, Q_CONTENT, D, CLUSTERS = 2, 2, 8, 8
Q = Q_CONTENT + 1


def _cli(*args):
  """`python -m linr_tf ARGS` in a process of its own."""
  env = dict(os.environ, PYTHONPATH=REPO)
  res = subprocess.run([sys.executable, "-m", "linr_tf", *args], capture_output=True,
                       text=True, env=env, timeout=600, cwd=REPO)
  assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-3000:])
  return res.stdout


def _cli_here(command, *flags, code=0):
  """The same command line (`cli.main`) in this process: no second
  TensorFlow start-up. Returns stdout (stderr when `code` != 0)."""
  cli.FLAGS.unparse_flags()
  cli.FLAGS(["linr_tf", *flags])
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    got = cli.main(["linr_tf", command])
  assert got == code, (command, flags, out.getvalue()[-2000:], err.getvalue()[-2000:])
  return out.getvalue() if code == 0 else err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """train / export / query through the command line on a MoL config."""
  root = tmp_path_factory.mktemp("mol_cli")
  data_dir, workdir = str(root / "data"), str(root / "run")
  data_lib.generate_feed(data_dir, num_users=120, num_items=400, seed=3)
  config = write_config(str(root))
  out = {"train": _cli("train", f"--config={config}", f"--data_dir={data_dir}",
                       f"--workdir={workdir}", "--verbose=0")}
  out["export"] = _cli_here("export", f"--workdir={workdir}")
  out["portable"] = _cli_here("export", f"--workdir={workdir}", "--portable", code=1)
  path = os.path.join(workdir, "export", "1")
  out["query"] = _cli_here("query", f"--model={path}", "--query=user_id=u3",
                           '--filter=lang = "en"', "--k=4")
  # One load and one restore for the module (the update test runs last of
  # those that read the catalogue as exported).
  return {"root": root, "data_dir": data_dir, "workdir": workdir, "path": path,
          "out": out, "attributes": catalog_attributes(data_dir),
          "loaded": linr_tf.load(path), "model": training.restore(workdir)}


def test_cli_trains_clusters_exports_and_queries(run):
  assert "held-out recall@10=" in run["out"]["train"]
  assert "SavedModel written to" in run["out"]["export"]
  assert ("error: --portable does not support Mixture-of-Logits models"
          in run["out"]["portable"])
  assert "4 result(s)" in run["out"]["query"]
  model = run["model"]
  assert type(model).__name__ == "MoLRetrievalModel"
  assert model.index.item_shape == (Q, D) and model.index.query_shape == (P, D)
  # k-means ran as a model step: every catalogue item has a cluster.
  keys, values = model.cluster_table.export()
  assert len(keys.numpy()) == 400 and set(values.numpy()) <= set(range(CLUSTERS))
  assert model.metadata().count('"mol_clustered": true') == 1


def _specs(sig):
  return {k: (tuple(v.shape.as_list()), v.dtype.name)
          for k, v in sig.structured_input_signature[1].items()}


def test_signatures_are_the_dot_exports(run, tmp_path):
  """Same signature names and inputs as the dot-product export of the same
  config without `mol`; only the embedding shapes ([Q, d], [P, d]) and the
  cluster_id of upsert_embeddings differ."""
  mol = run["loaded"]
  dot_path = training.export_untrained(
      training.config_lib.load(write_config(str(tmp_path), mol=False)), run["data_dir"],
      str(tmp_path / "dot"))
  dot = linr_tf.load(dot_path)
  assert list(mol.signatures) == list(dot.signatures)
  for name in dot.signatures:
    got, want = _specs(mol.signatures[name]), _specs(dot.signatures[name])
    if name == "upsert_embeddings":
      assert got.pop("cluster_id") == ((None,), "int32")
      assert got.pop("embedding") == ((None, Q, D), "float32")
      assert want.pop("embedding") == ((None, D), "float32")
    if name == "retrieve_embeddings":
      assert got.pop("query_embedding") == ((None, P, D), "float32")
      want.pop("query_embedding")
    assert got == want, name
    assert (set(mol.signatures[name].structured_outputs)
            == set(dot.signatures[name].structured_outputs))


def test_serving_default_matches_numpy(run):
  loaded, model = run["loaded"], run["model"]
  ref = ExportedMoL(loaded)
  users = ["u1", "u5", "u9", "u17"]
  filters = ["", 'lang = "en"', 'topic IN ("ai", "ml") AND type IN ("post", "article")',
             'NOT country = "us" AND age_hours < 72']
  out = loaded.signatures["serving_default"](
      user_id=tf.constant(users), filter=tf.constant(filters), k=tf.constant(12))
  q = model.query_embeddings({"user_id": tf.constant(users)}).numpy()
  want = ref.top_k(q, filters, 12, run["attributes"])
  got = (out["scores"].numpy(), ref.slots_of(out["item_ids"].numpy()), out["count"].numpy())
  assert_top_k_matches(got, want, rtol=1e-4, atol=1e-5)
  assert (want[2] == 12).all()
  # retrieve_with_options (auto) is the same call; MoL has no mask / prefilter.
  again = loaded.signatures["retrieve_with_options"](
      user_id=tf.constant(users), filter=tf.constant(filters), k=tf.constant(12),
      strategy=tf.constant("auto"))
  np.testing.assert_array_equal(again["item_ids"].numpy(), out["item_ids"].numpy())
  with pytest.raises(tf.errors.InvalidArgumentError, match="not supported by MoLSearch"):
    loaded.signatures["retrieve_with_options"](
        user_id=tf.constant(users), filter=tf.constant(filters), k=tf.constant(3),
        strategy=tf.constant("mask"))
  # Query embeddings made elsewhere ([B, P, d]), more than pass: padding.
  rng = np.random.default_rng(0)
  qe = unit_rows(rng, 2, (P, D))
  few = ['lang = "en"', 'NOT country = "us" AND age_hours < 72']
  out = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(qe), filter=tf.constant(few), k=tf.constant(400))
  want = ref.top_k(qe, few, 400, run["attributes"])
  assert (want[2] < 400).all()
  got = (out["scores"].numpy(), ref.slots_of(out["item_ids"].numpy()), out["count"].numpy())
  assert_top_k_matches(got, want, rtol=1e-4, atol=1e-5)
  assert (out["item_ids"].numpy()[0, want[2][0]:] == b"").all()


def test_request_checks_as_the_dot_export(run):
  loaded = run["loaded"]
  serve = loaded.signatures["serving_default"]
  for k, message in ((0, "k must be > 0"), (5000, "k must be <= 4096")):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      serve(user_id=tf.constant(["u1"]), filter=tf.constant([""]), k=tf.constant(k))
  with pytest.raises(tf.errors.InvalidArgumentError, match="one string per query"):
    serve(user_id=tf.constant(["u1", "u2"]), filter=tf.constant([""]), k=tf.constant(3))
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown attribute"):
    serve(user_id=tf.constant(["u1"]), filter=tf.constant(['colour = "red"']),
          k=tf.constant(3))


def test_updates_through_the_signatures(run):
  """Cold items by features (nearest cluster in-graph), [Q, d] rows + cluster
  id, a replace, a stale version and a delete; then search == numpy."""
  loaded = run["loaded"]
  attributes = dict(run["attributes"])
  cold = {"item_id": ["cold1", "cold2", "cold3"], "topic": ["ai", "ml|cloud", "sales"],
          "lang": ["en", "de", "en"], "country": ["us", "gb", "in"],
          "type": ["post", "article", "video"], "age_hours": [2.0, 30.0, 500.0]}
  out = loaded.signatures["upsert_items"](
      version=tf.constant([1, 1, 1], tf.int64), age_hours=tf.constant(cold["age_hours"]),
      **{k: tf.constant(v) for k, v in cold.items() if k != "age_hours"})
  assert out["applied"].numpy().tolist() == [True] * 3
  assert out["previous_version"].numpy().tolist() == [-1] * 3
  for j, item in enumerate(cold["item_id"]):
    attributes[item] = {a: str(cold[a][j]) for a in cold if a != "item_id"}
  ref = ExportedMoL(loaded)
  slots = [ref.slot(i) for i in cold["item_id"]]
  assert min(slots) >= 400                              # new slots
  content = ref.rows[slots, :Q_CONTENT]
  want_cluster = nearest_cluster(content, ref.centroids)
  np.testing.assert_array_equal(ref.cluster_ids[slots], want_cluster)
  emb = ref.cluster_embeddings[want_cluster]
  np.testing.assert_allclose(ref.rows[slots, Q_CONTENT],
                             emb / np.linalg.norm(emb, axis=1, keepdims=True), atol=1e-6)

  rng = np.random.default_rng(1)
  rows = unit_rows(rng, 3, (Q, D))
  raw = {"topic": ["ai", "data", "ai|ml"], "lang": ["en", "en", "fr"],
         "country": ["de", "us", "fr"], "type": ["post", "post", "job"]}
  out = loaded.signatures["upsert_embeddings"](
      item_id=tf.constant(["vec1", "p5", "p6"]), version=tf.constant([4, 1, 0], tf.int64),
      embedding=tf.constant(rows), cluster_id=tf.constant([3, 7, 1], tf.int32),
      age_hours=tf.constant([1.0, 10.0, 100.0], tf.float64),
      **{k: tf.constant(v) for k, v in raw.items()})
  # p6 is in the catalogue at version 0: version 0 is not newer.
  assert out["applied"].numpy().tolist() == [True, True, False]
  assert out["previous_version"].numpy().tolist() == [-1, 0, 0]
  for j, item in enumerate(["vec1", "p5"]):
    attributes[item] = {**{a: raw[a][j] for a in raw}, "age_hours": str([1.0, 10.0][j])}
  out = loaded.signatures["delete_items"](item_id=tf.constant(["p7", "p8"]),
                                          version=tf.constant([1, 0], tf.int64))
  assert out["applied"].numpy().tolist() == [True, False]

  ref = ExportedMoL(loaded)
  for j, item in enumerate(["vec1", "p5"]):          # rows and cluster as written
    np.testing.assert_allclose(ref.rows[ref.slot(item)], rows[j], atol=1e-7)
    assert ref.cluster_ids[ref.slot(item)] == [3, 7][j]
  assert ref.slot("p7") == -1 and ref.slot("p8") >= 0 and ref.slot("p6") >= 0
  assert int(ref.live.sum()) == 400 + 3 + 1 - 1

  users = ["u2", "u3", "u4"]
  filters = ["", 'lang = "en"', 'topic IN ("ai", "ml") AND type IN ("post", "article")']
  q = run["model"].query_embeddings({"user_id": tf.constant(users)}).numpy()
  q[2] = rows[0, :P]      # a query close to vec1's first components
  found = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(q), filter=tf.constant(filters), k=tf.constant(20))
  want = ref.top_k(q, filters, 20, attributes)
  got = (found["scores"].numpy(), ref.slots_of(found["item_ids"].numpy()),
         found["count"].numpy())
  assert_top_k_matches(got, want, rtol=1e-4, atol=1e-5)
  assert b"p7" not in found["item_ids"].numpy()


def test_bad_rows_and_cluster_ids_are_clear_errors(run):
  loaded = run["loaded"]
  live = LiveIndex(loaded)
  attrs = {"topic": ["ai"], "lang": ["en"], "country": ["us"], "type": ["post"],
           "age_hours": [1.0]}
  with pytest.raises(ValueError, match=r"embeddings must be \[1, 3, 8\] \(n items x \[Q, d\] "
                                       r"= \[3, 8\]\), got \[1, 2, 8\] \(item 'bad' has \[2, 8\]\)"):
    live.upsert_embeddings(["bad"], [1], np.zeros([1, 2, 8], np.float32), attrs,
                           cluster_ids=[0])
  with pytest.raises(ValueError, match=r"item 'bad': cluster_id 8 is not in \[0, 8\)"):
    live.upsert_embeddings(["bad"], [1], np.ones([1, 3, 8], np.float32), attrs,
                           cluster_ids=[8])
  with pytest.raises(ValueError, match=r"pass cluster_ids"):
    live.upsert_embeddings(["bad"], [1], np.ones([1, 3, 8], np.float32), attrs)
  with pytest.raises(ValueError, match=r"item 'bad': embedding contains NaN"):
    live.upsert_embeddings(["bad"], [1], np.full([1, 3, 8], np.nan, np.float32), attrs,
                           cluster_ids=[0])
  # In-graph (the signature, fed directly): the same contract.
  sig = loaded.signatures["upsert_embeddings"]
  inputs = dict(item_id=tf.constant(["bad"]), version=tf.constant([1], tf.int64),
                topic=tf.constant(["ai"]), lang=tf.constant(["en"]),
                country=tf.constant(["us"]), type=tf.constant(["post"]),
                age_hours=tf.constant([1.0], tf.float64))
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"cluster_ids must be in \[0, 8\)"):
    sig(embedding=tf.ones([1, 3, 8]), cluster_id=tf.constant([-1]), **inputs)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"embedding \[1,2,8\] is not compatible with expected shape \[\?,3,8\]"):
    sig(embedding=tf.ones([1, 2, 8]), cluster_id=tf.constant([0]), **inputs)
  assert ExportedMoL(loaded).slot("bad") == -1
