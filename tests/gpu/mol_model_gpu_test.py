"""The MoL product model on the GPU: a SavedModel of a `mol` config exported
on the host (as on a CPU-only machine), loaded where TensorFlow sees a GPU.
The loader must put the MoL row stores (`mol_vectors` [cap, Q, d],
`cluster_ids`) in HBM, `serving_default` / `retrieve_embeddings` /
`upsert_embeddings` must run their hot ops (LinrReadRows, LinrFilterMask,
LinrMoLTopK, LinrWriteRows) on the GPU, and the results must equal the numpy
MoL reference computed from the exported variables (tests/mol_integration_helpers.py).
Run by tests/gpu/run.sh; skipped where TensorFlow sees no GPU."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.eager import context

import linr_tf
from linr_tf import config as config_lib
from linr_tf import data as data_lib
from linr_tf import export as export_lib
from linr_tf import model as model_lib
from linr_tf import training
from linr_tf.mol.model import MoLRetrievalModel
from mol_integration_helpers import (ExportedMoL, catalog_attributes, nearest_cluster,
                                     unit_rows, write_config)
from mol_reference import assert_top_k_matches  # noqa: E402  (tests/ops/)

HOT_OPS = {"LinrFilterMask", "LinrMoLTopK", "LinrReadRows", "LinrWriteRows"}
FILTERS = ['lang = "en"', "", 'topic IN ("ai", "ml") AND type IN ("post", "article")']


@pytest.fixture(scope="module", autouse=True)
def _no_tf32():
  """The reference's query embeddings come from the CPU; TensorFlow's GPU
  float32 matmuls default to TF32 (10-bit mantissa), which moved the served
  query tower's scores by ~1e-3 relative on the H200."""
  was = tf.config.experimental.tensor_float_32_execution_enabled()
  tf.config.experimental.enable_tensor_float_32_execution(False)
  yield
  tf.config.experimental.enable_tensor_float_32_execution(was)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp("mol_gpu")
  data_dir = str(root / "data")
  data_lib.generate_feed(data_dir, num_users=200, num_items=3000, interactions_per_user=10,
                         seed=2)
  cfg = config_lib.load(write_config(str(root)))
  with tf.device("/CPU:0"):
    catalog, log = training.load_data(cfg, data_dir)
    tf.keras.utils.set_random_seed(0)
    model = MoLRetrievalModel.from_data(cfg, catalog, log)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(cfg.train.learning_rate))
    train_ds, _ = model_lib.make_datasets(cfg, catalog, log)
    model.fit_with_clusters(train_ds, catalog, 2, verbose=0)
    model.build_index(catalog)
    path = export_lib.export(model, str(root / "export"))
  return {"path": path, "model": model, "attributes": catalog_attributes(data_dir)}


def _placement(fn):
  """(op type -> devices it ran on, outputs as numpy)."""
  context.enable_run_metadata()
  try:
    context.export_run_metadata()
    out = {k: v.numpy() for k, v in fn().items()}
    meta = context.export_run_metadata()
  finally:
    context.disable_run_metadata()
  devices = {}
  for graph in meta.function_graphs:
    for g in graph.partition_graphs:
      for node in g.node:
        devices.setdefault(node.op, set()).add(node.device)
  return devices, out


def _on_host(devices):
  return {op: d for op, d in devices.items()
          if op in HOT_OPS and any("GPU" not in x for x in d)}


def test_mol_stores_live_on_the_gpu(exported):
  index = linr_tf.load(exported["path"]).index
  for var in (index.mol_vectors, index.cluster_ids, index.vectors, index.attributes):
    assert "GPU" in var.device, (var.name, var.device)


def test_serving_on_the_gpu_equals_numpy(exported):
  loaded = linr_tf.load(exported["path"])
  ref = ExportedMoL(loaded)
  users = ["u1", "u2", "u3"]
  devices, out = _placement(lambda: loaded.signatures["serving_default"](
      user_id=tf.constant(users), filter=tf.constant(FILTERS), k=tf.constant(50)))
  assert "LinrMoLTopK" in devices, sorted(devices)
  assert not _on_host(devices), _on_host(devices)
  with tf.device("/CPU:0"):
    q = exported["model"].query_embeddings({"user_id": tf.constant(users)}).numpy()
  want = ref.top_k(q, FILTERS, 50, exported["attributes"])
  assert_top_k_matches((out["scores"], ref.slots_of(out["item_ids"]), out["count"]), want,
                       rtol=1e-4, atol=1e-5)
  qe = unit_rows(np.random.default_rng(0), 16, (2, 8))          # B = 16, [P, d]
  filters = (FILTERS * 6)[:16]
  devices, out = _placement(lambda: loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(qe), filter=tf.constant(filters), k=tf.constant(100)))
  assert not _on_host(devices), _on_host(devices)
  want = ref.top_k(qe, filters, 100, exported["attributes"])
  assert_top_k_matches((out["scores"], ref.slots_of(out["item_ids"]), out["count"]), want,
                       rtol=1e-4, atol=1e-5)


def test_updates_on_the_gpu_are_searchable(exported):
  loaded = linr_tf.load(exported["path"])
  rows = unit_rows(np.random.default_rng(1), 1, (3, 8))
  inputs = dict(item_id=tf.constant(["gpu-mol"]), version=tf.constant([1], tf.int64),
                embedding=tf.constant(rows), cluster_id=tf.constant([5], tf.int32),
                topic=tf.constant(["ai"]), lang=tf.constant(["en"]), country=tf.constant(["us"]),
                type=tf.constant(["post"]), age_hours=tf.constant([1.0], tf.float64))
  devices, out = _placement(lambda: loaded.signatures["upsert_embeddings"](**inputs))
  assert out["applied"].tolist() == [True]
  assert all("GPU" in d for d in devices.get("LinrWriteRows", {"?"})), devices.get("LinrWriteRows")
  ref = ExportedMoL(loaded)
  slot = ref.slot("gpu-mol")
  np.testing.assert_allclose(ref.rows[slot], rows[0], atol=1e-7)
  assert ref.cluster_ids[slot] == 5
  q = rows[:, :2]                                   # its own first P components
  found = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(q), filter=tf.constant(['lang = "en"']), k=tf.constant(10))
  attributes = dict(exported["attributes"], **{"gpu-mol": {
      "topic": "ai", "lang": "en", "country": "us", "type": "post", "age_hours": "1.0"}})
  want = ref.top_k(q, ['lang = "en"'], 10, attributes)
  assert_top_k_matches((found["scores"].numpy(), ref.slots_of(found["item_ids"].numpy()),
                        found["count"].numpy()), want, rtol=1e-4, atol=1e-5)
  # A cold item by features: its nearest cluster, in-graph on the GPU.
  out = loaded.signatures["upsert_items"](
      item_id=tf.constant(["gpu-cold"]), version=tf.constant([1], tf.int64),
      topic=tf.constant(["ml|cloud"]), lang=tf.constant(["de"]), country=tf.constant(["gb"]),
      type=tf.constant(["article"]), age_hours=tf.constant([30.0]))
  assert out["applied"].numpy().tolist() == [True]
  ref = ExportedMoL(loaded)
  slot = ref.slot("gpu-cold")
  assert ref.cluster_ids[slot] == nearest_cluster(ref.rows[[slot], :2], ref.centroids)[0]
