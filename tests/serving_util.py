"""Helpers for the serving tests: run `python -m serving`, talk REST and gRPC."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ServerProcess:
  """`python -m serving` in a subprocess on free loopback ports."""

  def __init__(self, args, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "serving", "--rest_port=-1", "--grpc_port=-1",
         *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        cwd=REPO, text=True)
    self.lines = []
    ready = threading.Event()
    self.rest_port = self.grpc_port = None

    def read():
      for line in self.proc.stdout:
        self.lines.append(line)
        if line.startswith("LINR_SERVING_READY"):
          parts = dict(p.split("=") for p in line.split()[1:])
          self.rest_port = int(parts["rest"])
          self.grpc_port = int(parts["grpc"])
          ready.set()
      ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or self.rest_port is None:
      self.stop()
      raise RuntimeError("server did not start:\n" + "".join(self.lines[-50:]))

  def alive(self) -> bool:
    return self.proc.poll() is None

  def log(self) -> str:
    return "".join(self.lines[-100:])

  def stop(self):
    if self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(30)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait(30)


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
