"""Serving with in-process ingestion: items published to the change stream
become searchable (under a filter) through REST and the official gRPC stub,
without a restart; restart recovers from the snapshot; updates also go
through the Predict API with the update signatures."""

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from linr_tf import export as export_lib
from linr_tf.ingest import events as ev
from linr_tf.ingest.local_log import LocalLogWriter
from serving_util import ServerProcess, predict_request, rest, wait_for

MODEL = "linr"


@pytest.fixture(scope="module")
def setup(trained, tmp_path_factory):
  model, catalog, cfg = trained
  base = str(tmp_path_factory.mktemp("models") / MODEL)
  export_lib.export(model, base)
  query = model.query_tower({"user_id": tf.constant(["u0"])}).numpy()[0]
  return base, query, catalog, cfg


def _top(port, filt, k=5):
  status, body = rest(port, "POST", f"/v1/models/{MODEL}:predict",
                      {"instances": [{"user_id": "u0", "filter": filt, "k": k}]})
  assert status == 200, body
  return body["predictions"][0]["item_ids"]


def _attrs(catalog, lang):
  row = {a: str(catalog.columns[a][0]) for a in ("topic", "country", "type")}
  return dict(row, lang=lang, age_hours=float(catalog.columns["age_hours"][0]))


def test_published_items_become_searchable_and_survive_restart(setup, tmp_path):
  base, query, catalog, cfg = setup
  log_dir, snaps = str(tmp_path / "log"), str(tmp_path / "snapshots")
  writer = LocalLogWriter(log_dir)
  args = [f"--model_name={MODEL}", f"--model_base_path={base}",
          f"--ingest_source=local:{log_dir}", f"--ingest_snapshot_dir={snaps}",
          "--ingest_snapshot_interval_seconds=0.5"]
  server = ServerProcess(args)
  try:
    assert "breaking" not in _top(server.rest_port, 'lang = "en"')
    now = time.time()
    # A vector u0 must rank first, published as an English item.
    writer.append([ev.upsert_embedding("breaking", 1, 3.0 * query, _attrs(catalog, "en"), now),
                   '{"item_id": "broken"}'])   # malformed: dead-lettered, ingestion goes on
    assert wait_for(lambda: _top(server.rest_port, 'lang = "en"')[0] == "breaking", 60), \
        server.log()
    assert "breaking" not in _top(server.rest_port, 'lang = "de"', k=50)
    # Attribute change: it moves from the "en" to the "de" results.
    writer.append([ev.update_attributes("breaking", 2, _attrs(catalog, "de"), time.time())])
    assert wait_for(lambda: _top(server.rest_port, 'lang = "de"')[0] == "breaking", 60)
    assert "breaking" not in _top(server.rest_port, 'lang = "en"', k=50)
    # The official gRPC stub sees the same index.
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      resp = stub.Predict(predict_request(MODEL, {
          "user_id": (["u0"], tf.string), "filter": (['lang = "de"'], tf.string),
          "k": (3, tf.int32)}), timeout=60)
      assert tf.make_ndarray(resp.outputs["item_ids"])[0, 0] == b"breaking"
      # Writes through Predict with an update signature (same version rule).
      resp = stub.Predict(predict_request(MODEL, {
          "item_id": (["breaking"], tf.string), "version": ([1], tf.int64)},
          signature_name="delete_items"), timeout=60)
      assert not tf.make_ndarray(resp.outputs["applied"])[0]     # stale version
    time.sleep(1.5)   # a snapshot covering both events
  finally:
    server.stop()

  # Restart: the newest snapshot is restored, nothing is replayed twice.
  server = ServerProcess(args)
  try:
    assert _top(server.rest_port, 'lang = "de"')[0] == "breaking"
    writer.append([ev.delete("breaking", 3, time.time())])
    assert wait_for(lambda: "breaking" not in _top(server.rest_port, 'lang = "de"', k=50), 60)
  finally:
    server.stop()
    writer.close()
