"""Helpers for the serving tests: run `python -m serving`, talk REST and gRPC."""

import http.client
import json
import time

from linr_tf import demo


class ServerProcess(demo.ServerProcess):
  """`python -m serving` on free loopback ports (linr_tf.demo.ServerProcess),
  plus what the tests ask of it."""

  def __init__(self, args, timeout=300):
    super().__init__(args, timeout_s=timeout)

  def alive(self) -> bool:
    return self.proc.poll() is None

  def log(self) -> str:
    return "".join(self.lines[-100:])


def rest(port, method, path, body=None, timeout=60, headers=None):
  """(status, parsed JSON or raw text)."""
  conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
  try:
    if isinstance(body, (dict, list)):
      body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
  finally:
    conn.close()
  try:
    return resp.status, json.loads(data)
  except ValueError:
    return resp.status, data.decode("utf-8", "replace")


def predict_request(name, inputs, signature_name="", version=None, label=None):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  req = predict_pb2.PredictRequest()
  req.model_spec.name = name
  if signature_name:
    req.model_spec.signature_name = signature_name
  if version is not None:
    req.model_spec.version.value = version
  if label is not None:
    req.model_spec.version_label = label
  for key, (value, dtype) in inputs.items():
    req.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype))
  return req


def wait_for(cond, timeout=120, interval=0.2):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if cond():
      return True
    time.sleep(interval)
  return False
