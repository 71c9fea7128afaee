"""Hot reload: a new version exported under load is picked up; no request fails."""

import threading
import time

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from linr_tf import export as export_lib
from serving_util import ServerProcess, predict_request, rest, wait_for


@pytest.fixture(scope="module")
def base(trained, tmp_path_factory):
  model, _, _ = trained
  path = str(tmp_path_factory.mktemp("models") / "linr")
  export_lib.export(model, path, version=1)
  return path


def test_new_version_swapped_in_without_failed_requests(trained, base):
  model, _, _ = trained
  server = ServerProcess([f"--model_base_path={base}", "--model_name=linr",
                          "--file_system_poll_wait_seconds=0.2"])
  stop = threading.Event()
  failures, counts, versions = [], {"rest": 0, "grpc": 0}, set()

  def rest_load():
    body = {"instances": [{"user_id": "u3", "filter": 'topic = "ai"', "k": 5}]}
    while not stop.is_set():
      status, out = rest(server.rest_port, "POST", "/v1/models/linr:predict",
                         body)
      if status != 200 or out["predictions"][0]["count"] != 5:
        failures.append(("rest", status, out))
      counts["rest"] += 1

  def grpc_load():
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      req = predict_request("linr", {"user_id": (["u4", "u5"], tf.string),
                                     "filter": (["", "lang = en"], tf.string),
                                     "k": (3, tf.int32)})
      while not stop.is_set():
        try:
          resp = stub.Predict(req, timeout=60)
          versions.add(resp.model_spec.version.value)
        except grpc.RpcError as e:
          failures.append(("grpc", e.code(), e.details()))
        counts["grpc"] += 1

  threads = [threading.Thread(target=f) for f in (rest_load, rest_load,
                                                   grpc_load)]
  try:
    for t in threads:
      t.start()
    assert wait_for(lambda: counts["rest"] > 10 and counts["grpc"] > 5, 60)
    # Written in place while the poller runs (the server only considers a
    # version directory once saved_model.pb exists, and retries failed loads).
    export_lib.export(model, base, version=2)
    assert wait_for(lambda: 2 in versions, 120), server.log()
    done = dict(counts)
    assert wait_for(lambda: counts["grpc"] > done["grpc"] + 5, 60)
    time.sleep(0.5)
  finally:
    stop.set()
    for t in threads:
      t.join(60)
    status, out = rest(server.rest_port, "GET", "/v1/models/linr")
    alive = server.alive()
    server.stop()
  assert alive, server.log()
  assert not failures, failures[:5]
  assert counts["rest"] > 20 and counts["grpc"] > 10, counts
  assert status == 200
  states = {s["version"]: s["state"] for s in out["model_version_status"]}
  assert states == {"2": "AVAILABLE", "1": "END"}, out
