"""The whole model on the GPU: `model.fit` with the gradient through the
top-k op, a SavedModel whose index variables the loader places in GPU memory,
every signature's hot-path ops on the GPU (placement read from run metadata),
and the same results as the CPU ops."""

import dataclasses
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
from linr_tf import ops

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Ops that touch the index (N-sized work) and must run on the GPU.
HOT_OPS = {"LinrFilterMask", "LinrMaskedTopK", "LinrPrefilterTopK", "LinrHammingTopK",
           "LinrReadRows", "LinrWriteRows"}


def _config(**index):
  cfg = config_lib.load(os.path.join(REPO, "configs", "demo.json"))
  train = dataclasses.replace(cfg.train, epochs=1, batch_size=256)
  return dataclasses.replace(cfg, embedding_dim=32, hidden_units=[64], train=train,
                             index=dataclasses.replace(cfg.index, **index))


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("feed"))
  data_lib.generate_feed(d, num_users=300, num_items=2000, interactions_per_user=20, seed=3)
  return d


def _train(cfg, d):
  catalog = data_lib.read_items(os.path.join(d, "items.csv"), cfg)
  log = data_lib.read_interactions(os.path.join(d, "interactions.csv"), cfg, catalog)
  tf.keras.utils.set_random_seed(0)
  model = model_lib.RetrievalModel.from_data(cfg, catalog, log)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(cfg.train.learning_rate))
  train_ds, _ = model_lib.make_datasets(cfg, catalog, log)
  history = model.fit(train_ds, epochs=1, verbose=0)
  model.build_index(catalog)
  return model, catalog, history


@pytest.fixture(scope="module", params=["float16", "codes", "float16-exported-on-cpu"])
def exported(request, feed, tmp_path_factory):
  """A trained, exported model. "float16-exported-on-cpu" is trained and
  exported with its variables in host memory, as on a CPU-only machine: the
  loader must still put the index in HBM and run the hot path on the GPU."""
  index = {"vectors": "float16"} if request.param.startswith("float16") else {
      "vectors": "float16", "code_bits": 128, "rerank_factor": 4}
  device = "/CPU:0" if request.param.endswith("exported-on-cpu") else "/GPU:0"
  with tf.device(device):
    model, catalog, history = _train(_config(**index), feed)
  path = export_lib.export(model, str(tmp_path_factory.mktemp("export")))
  return request.param, model, catalog, history, path


def test_fit_on_gpu_and_gradient_through_top_k(exported):
  _, model, _, history, _ = exported
  assert np.isfinite(history.history["loss"]).all()
  rng = np.random.default_rng(0)
  items = tf.Variable(rng.normal(size=(3000, 16)).astype(np.float32))
  q = tf.Variable(rng.normal(size=(4, 16)).astype(np.float32))
  mask = np.full((4, (3000 + 31) // 32), -1, np.int32)
  grads = {}
  for device in ("/CPU:0", "/GPU:0"):
    with tf.device(device), tf.GradientTape() as tape:
      found = ops.masked_top_k(q, items, mask, 10)
      loss = tf.reduce_sum(found.scores)
    grads[device] = [g.numpy() for g in tape.gradient(loss, [q, items])]
  for c, g in zip(grads["/CPU:0"], grads["/GPU:0"]):
    np.testing.assert_allclose(c, g, rtol=1e-5, atol=1e-5)
  assert np.abs(grads["/GPU:0"][0]).sum() > 0


def _placement(fn):
  """(device of every executed node (op type -> set of devices), outputs)."""
  context.enable_run_metadata()
  try:
    context.export_run_metadata()   # drops what earlier (eager) ops left behind
    out = {k: v.numpy() for k, v in fn().items()}
    meta = context.export_run_metadata()
  finally:
    context.disable_run_metadata()
  devices = {}
  for graph in meta.function_graphs:
    for g in graph.partition_graphs:
      for node in g.node:
        devices.setdefault(node.op, set()).add(node.device)
        if "CPU" in node.device and node.op in HOT_OPS:
          inputs = ", ".join(node.input[:4])
          _HOST_NODES.append(f"{node.name} ({node.op} <- {inputs}; "
                             f"{len(g.node)} nodes in its partition)")
  return devices, out


_HOST_NODES = []   # hot-path nodes seen on the host, for the failure message


def _signature_calls(loaded, cfg):
  user = tf.constant(["u1", "u2"])
  filters = tf.constant(['lang = "en"', ""])
  k = tf.constant(20)
  emb = tf.constant(np.random.default_rng(0).normal(size=(2, cfg.embedding_dim)), tf.float32)
  calls = {
      "serving_default": lambda: loaded.signatures["serving_default"](
          user_id=user, filter=filters, k=k),
      "retrieve_with_options": lambda: loaded.signatures["retrieve_with_options"](
          user_id=user, filter=filters, k=k, strategy=tf.constant("mask")),
      "retrieve_embeddings": lambda: loaded.signatures["retrieve_embeddings"](
          query_embedding=emb, filter=filters, k=k),
  }
  return calls


def test_loaded_index_lives_on_the_gpu_and_hot_ops_run_there(exported):
  name, model, _, _, path = exported
  loaded = linr_tf.load(path)
  index = loaded.index
  for var in (index.vectors, index.attributes, index.versions):
    assert "GPU" in var.device, (var.name, var.device)
  if name == "codes":
    assert "GPU" in index.codes.device
  for sig, call in _signature_calls(loaded, model.cfg).items():
    devices, _ = _placement(call)
    hot = {op: d for op, d in devices.items() if op in HOT_OPS}
    assert hot, f"{sig}: no LiNR op ran ({sorted(devices)})"
    on_host = {op: d for op, d in hot.items() if any("GPU" not in x for x in d)}
    assert not on_host, f"{sig}: hot-path ops on the host: {on_host}; nodes: {_HOST_NODES[:8]}"


def test_gpu_savedmodel_equals_cpu_ops(exported):
  _, model, _, _, path = exported
  loaded = linr_tf.load(path)
  calls = _signature_calls(loaded, model.cfg)
  gpu = {k: v.numpy() for k, v in calls["serving_default"]().items()}
  with tf.device("/CPU:0"):
    scores, ids, count = model.retrieve({"user_id": ["u1", "u2"]}, ['lang = "en"', ""], 20)
  np.testing.assert_array_equal(gpu["count"], count.numpy())
  np.testing.assert_array_equal(gpu["item_ids"], ids.numpy())
  np.testing.assert_allclose(gpu["scores"], scores.numpy(), rtol=1e-4, atol=1e-4)


def test_updates_run_on_the_gpu_and_are_searchable(exported):
  _, model, catalog, _, path = exported
  loaded = linr_tf.load(path)
  cfg = model.cfg
  emb = np.zeros((1, cfg.embedding_dim), np.float32)
  emb[0, 0] = 100.0
  attrs = {a: np.asarray(catalog.columns[a])[:1] for a in model.schema.attributes}
  inputs = {"item_id": tf.constant(["gpu-new"]), "version": tf.constant([1], tf.int64),
            "embedding": tf.constant(emb)}
  spec = loaded.signatures["upsert_embeddings"].structured_input_signature[1]
  for a, values in attrs.items():
    inputs[a] = tf.constant(values.astype(np.float64 if spec[a].dtype == tf.float64 else object))
  devices, out = _placement(lambda: loaded.signatures["upsert_embeddings"](**inputs))
  assert out["applied"].tolist() == [True]
  assert all("GPU" in d for d in devices.get("LinrWriteRows", {"?"})), devices.get("LinrWriteRows")
  found = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(emb), filter=tf.constant([""]), k=tf.constant(1))
  assert found["item_ids"].numpy()[0, 0] == b"gpu-new"
  assert "GPU" in loaded.index.vectors.device
  out = loaded.signatures["delete_items"](item_id=tf.constant(["gpu-new"]),
                                          version=tf.constant([2], tf.int64))
  assert out["applied"].numpy().tolist() == [True]
  found = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(emb), filter=tf.constant([""]), k=tf.constant(1))
  assert found["item_ids"].numpy()[0, 0] != b"gpu-new"
