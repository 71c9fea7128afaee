"""End to end: export, serve over REST and gRPC (official stubs), compare with
in-process results; TF Serving config files, labels, metadata, batching."""

import asyncio
import base64
import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

import linr_tf
from linr_tf import export as export_lib
from serving import config as config_lib
from serving import server as server_lib
from serving_util import ServerProcess, predict_request, rest

FILTERS = ["", 'lang = "en" AND type IN ("post", "article")', 'topic = "ai"',
           "country IN ('us','de') AND lang = en"]
USERS = ["u0", "u1", "u2", "u3"]


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
  model, _, _ = trained
  base = str(tmp_path_factory.mktemp("models") / "linr")
  path = export_lib.export(model, base)
  return base, path


@pytest.fixture(scope="module")
def reference(exported):
  fn = linr_tf.load(exported[1]).signatures["serving_default"]

  def run(users, filters, k):
    out = fn(user_id=tf.constant(users), filter=tf.constant(filters),
             k=tf.constant(k, tf.int32))
    return ([[x.decode() for x in row] for row in out["item_ids"].numpy()],
            out["scores"].numpy(), out["count"].numpy())
  return run


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
  base, _ = exported
  cfg = tmp_path_factory.mktemp("cfg") / "models.config"
  cfg.write_text(
      'model_config_list { config { name: "linr" base_path: "%s" '
      'model_platform: "tensorflow" '
      'model_version_policy { specific { versions: 1 } } '
      'version_labels { key: "stable" value: 1 } } }\n' % base)
  proc = ServerProcess([f"--model_config_file={cfg}",
                        "--file_system_poll_wait_seconds=0.5"])
  yield proc
  proc.stop()


def _same(got_ids, got_scores, got_count, ref, row=None):
  ids, scores, count = ref
  rows = range(len(ids)) if row is None else [row]
  for i, b in enumerate(rows):
    assert got_count[i] == count[b]
    assert got_ids[i] == ids[b]
    np.testing.assert_allclose(np.asarray(got_scores[i], np.float32),
                               scores[b], rtol=1e-5, atol=1e-6)


def test_rest_row_format_matches_in_process(server, reference):
  ref = reference(USERS, FILTERS, 7)
  body = {"instances": [{"user_id": u, "filter": f, "k": 7}
                        for u, f in zip(USERS, FILTERS)]}
  status, out = rest(server.rest_port, "POST", "/v1/models/linr:predict", body)
  assert status == 200, out
  preds = out["predictions"]
  assert len(preds) == 4 and sorted(preds[0]) == ["count", "item_ids", "scores"]
  _same([p["item_ids"] for p in preds], [p["scores"] for p in preds],
        [p["count"] for p in preds], ref)


def test_rest_columnar_b64_version_and_label(server, reference):
  ref = reference(USERS, FILTERS, 5)
  for path in ("/v1/models/linr:predict", "/v1/models/linr/versions/1:predict",
               "/v1/models/linr/labels/stable:predict",
               "/V1/Models/linr:PREDICT"):
    body = {"inputs": {
        "user_id": [{"b64": base64.b64encode(u.encode()).decode()}
                    for u in USERS],
        "filter": FILTERS, "k": 5}}
    status, out = rest(server.rest_port, "POST", path, body)
    assert status == 200, (path, out)
    cols = out["outputs"]
    _same(cols["item_ids"], cols["scores"], cols["count"], ref)


def test_rest_signature_name_and_padding(server, reference):
  body = {"signature_name": "retrieve_with_options",
          "inputs": {"user_id": ["u1"], "filter": ['topic = "ai"'], "k": 2000,
                     "strategy": "prefilter"}}
  status, out = rest(server.rest_port, "POST", "/v1/models/linr:predict", body)
  assert status == 200, out
  ids, scores, count = reference(["u1"], ['topic = "ai"'], 2000)
  n = int(count[0])
  assert out["outputs"]["count"] == [n] and n < 2000
  assert out["outputs"]["item_ids"][0][:n] == ids[0][:n]
  assert out["outputs"]["item_ids"][0][n:] == [""] * (2000 - n)
  assert all(s == float("-inf") for s in out["outputs"]["scores"][0][n:])


def test_rest_status_and_metadata(server):
  status, out = rest(server.rest_port, "GET", "/v1/models/linr")
  assert status == 200
  assert out == {"model_version_status": [{
      "version": "1", "state": "AVAILABLE",
      "status": {"error_code": "OK", "error_message": ""}}]}
  status, out = rest(server.rest_port, "GET", "/v1/models/linr/versions/1")
  assert status == 200 and out["model_version_status"][0]["version"] == "1"
  status, out = rest(server.rest_port, "GET", "/v1/models/linr/metadata")
  assert status == 200
  assert out["model_spec"] == {"name": "linr", "signature_name": "",
                               "version": "1"}
  sigs = out["metadata"]["signature_def"]["signature_def"]
  default = sigs["serving_default"]
  assert default["method_name"] == "tensorflow/serving/predict"
  assert sorted(default["inputs"]) == ["filter", "k", "user_id"]
  assert default["inputs"]["k"]["dtype"] == "DT_INT32"
  assert default["inputs"]["user_id"]["tensor_shape"]["dim"][0]["size"] == "-1"
  assert sorted(default["outputs"]) == ["count", "item_ids", "scores"]
  assert "retrieve_with_options" in sigs


def test_grpc_predict_metadata_status_with_official_stubs(server, reference):
  ref = reference(USERS, FILTERS, 6)
  with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for kw in ({}, {"version": 1}, {"label": "stable"}):
      req = predict_request("linr", {"user_id": (USERS, tf.string),
                                     "filter": (FILTERS, tf.string),
                                     "k": (6, tf.int32)}, **kw)
      resp = stub.Predict(req, timeout=60)
      assert resp.model_spec.name == "linr"
      assert resp.model_spec.version.value == 1
      assert resp.model_spec.signature_name == "serving_default"
      ids = [[x.decode() for x in r]
             for r in tf.make_ndarray(resp.outputs["item_ids"])]
      _same(ids, tf.make_ndarray(resp.outputs["scores"]),
            tf.make_ndarray(resp.outputs["count"]), ref)
    req = predict_request("linr", {"user_id": (["u2"], tf.string),
                                   "filter": (['topic = "ai"'], tf.string),
                                   "k": (3, tf.int32)})
    req.output_filter.append("count")
    resp = stub.Predict(req, timeout=60)
    assert list(resp.outputs) == ["count"]

    meta_req = get_model_metadata_pb2.GetModelMetadataRequest()
    meta_req.model_spec.name = "linr"
    meta_req.metadata_field.append("signature_def")
    meta = stub.GetModelMetadata(meta_req, timeout=60)
    assert meta.model_spec.version.value == 1
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    assert meta.metadata["signature_def"].Unpack(sig_map)
    assert sorted(sig_map.signature_def["serving_default"].inputs) == [
        "filter", "k", "user_id"]

    model_stub = model_service_pb2_grpc.ModelServiceStub(channel)
    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = "linr"
    status = model_stub.GetModelStatus(status_req, timeout=60)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


def test_grpc_errors_have_tf_serving_codes(server):
  with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    cases = [
        (predict_request("nope", {"k": (3, tf.int32)}),
         grpc.StatusCode.NOT_FOUND),
        (predict_request("linr", {"user_id": (["u1"], tf.string),
                                  "filter": (["lang = klingon"], tf.string),
                                  "k": (3, tf.int32)}),
         grpc.StatusCode.INVALID_ARGUMENT),
        (predict_request("linr", {"user_id": (["u1"], tf.string),
                                  "k": (3, tf.int32)}),
         grpc.StatusCode.INVALID_ARGUMENT),
        (predict_request("linr", {"user_id": (["u1"], tf.string),
                                  "filter": ([""], tf.string),
                                  "k": (3, tf.int32)}, version=9),
         grpc.StatusCode.NOT_FOUND),
    ]
    for req, code in cases:
      with pytest.raises(grpc.RpcError) as e:
        stub.Predict(req, timeout=60)
      assert e.value.code() == code, e.value.details()


def test_dynamic_batching_shares_calls_and_isolates_errors(exported, reference):
  """In-process server: concurrent single queries run in shared batches; a
  bad filter in a batch fails only its own request."""
  import aiohttp  # pylint: disable=g-import-not-at-top
  base, _ = exported
  opts = config_lib.parse_batching_parameters(
      "max_batch_size { value: 8 } batch_timeout_micros { value: 50000 } "
      "num_batch_threads { value: 1 }")
  srv = server_lib.Server(config_lib.single_model_config("linr", base),
                          rest_port=-1, grpc_port=0, batching=opts,
                          poll_seconds=0).start()
  users = [f"u{i}" for i in range(24)]
  filters = [FILTERS[i % len(FILTERS)] for i in range(24)]
  filters[5] = "lang = klingon"
  try:
    async def go():
      url = f"http://127.0.0.1:{srv.rest_port}/v1/models/linr:predict"
      async with aiohttp.ClientSession() as session:
        async def one(u, f, k):
          body = {"instances": [{"user_id": u, "filter": f, "k": k}]}
          async with session.post(url, json=body) as resp:
            return resp.status, await resp.json()
        return await asyncio.gather(*[
            one(u, f, 4 if i % 3 else 9) for i, (u, f) in
            enumerate(zip(users, filters))])
    results = asyncio.run(go())
  finally:
    srv.stop()
  for i, (status, out) in enumerate(results):
    if i == 5:
      assert status == 400 and "klingon" in out["error"]
      continue
    assert status == 200, out
    k = 4 if i % 3 else 9
    ref = reference([users[i]], [filters[i]], k)
    p = out["predictions"][0]
    _same([p["item_ids"]], [p["scores"]], [p["count"]], ref)
  # 24 requests (two k values, so two queues) in far fewer model calls.
  assert srv.executor.batched_rows == 24
  assert srv.executor.batches_run <= 8, srv.executor.batches_run
