"""The demo: synthetic feed -> training -> export -> filtered queries -> a live
update, and optionally the model server.

    from linr_tf import demo
    demo.run("out/demo", num_users=300, num_items=800, epochs=1)
    demo.run("out/demo", serve=True)    # + one REST and one gRPC query

Same as `python -m linr_tf demo [--workdir=out/demo] [--serve]`. The server
step runs `python -m serving` in a subprocess (the `serving` package depends
on `linr_tf`, never the other way round) and queries it as a client would.
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import linr_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from linr_tf import config as config_lib
from linr_tf import data as data_lib
from linr_tf import export as export_lib
from linr_tf import training
from linr_tf.errors import UsageError
from linr_tf.query import print_results, query

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WORKDIR = "out/demo"
DEFAULT_CONFIG = os.path.join(_ROOT, "configs", "demo.json")
FILTERS = ("", 'lang = "en" AND type IN ("post", "article")',
           'topic = "ai" AND country IN ("us", "in")',
           '(lang = "de" OR lang = "fr") AND NOT type = "job" AND age_hours < 72')


def run(workdir: str = DEFAULT_WORKDIR, config_path: str = DEFAULT_CONFIG,
        data_dir: str = None, num_users: int = 2000, num_items: int = 5000,
        seed: int = 1, epochs: int = None, verbose: int = 1, k: int = 10,
        serve: bool = False) -> str:
  """Runs the demo in `workdir` (data, checkpoint, export); returns the export.

  Args:
    workdir: output folder: `data/` (unless `data_dir`), checkpoint, `export/`,
      the change log `changes/` and ingestor snapshots `ingest/`.
    config_path: model/training config (JSON).
    data_dir: where the synthetic feed goes (default `<workdir>/data`).
    num_users, num_items, seed: size and seed of the synthetic feed.
    epochs: overrides the config's epochs.
    verbose: Keras fit verbosity.
    k: results per query.
    serve: also start `python -m serving` and query it over REST and gRPC.
  """
  start = time.time()
  data_dir = data_dir or os.path.join(workdir, "data")
  cfg = config_lib.load(config_path)
  print(f"[1/5] generating a synthetic feed in {data_dir}")
  data_lib.generate_feed(data_dir, num_users, num_items, seed=seed)
  print("[2/5] training the two towers (TFRS in-batch softmax, log-q "
        "corrected); index rebuilt before each evaluation")
  model, metrics, _ = training.train(cfg, data_dir, workdir, epochs, verbose)
  print(f"      held-out {training.recall_summary(metrics)}")
  print("[3/5] exporting one SavedModel (towers + index)")
  path = export_lib.export(model, os.path.join(workdir, "export"))
  print(f"      {path}")
  print("[4/5] querying the exported model")
  catalog, _ = training.load_data(cfg, data_dir)
  describe = {i: " ".join(f"{a}={catalog.columns[a][n]}"
                          for a in cfg.filter_attributes)
              for n, i in enumerate(catalog.ids)}
  user = "u0"
  for text in FILTERS:
    ids, scores, count = query(path, [f"{cfg.query_id_feature}={user}"], text,
                               k)
    print_results(f"\n{cfg.query_id_feature}={user}  filter: "
                  f"{text or '(none)'}", ids, scores, count, describe)
  print("\n[5/5] live update: publish a new post to the change log, "
        "ingest it into the in-model index, query it under a filter")
  live_update(path, model, cfg, workdir, user, k)
  if serve:
    print("\n[6/6] serving the export (TF Serving REST and gRPC APIs)")
    serve_and_query(os.path.dirname(path), user,
                    'lang = "en" AND type = "post"', k)
  print(f"\ndemo finished in {time.time() - start:.0f} s; try:\n  "
        f".venv/bin/python -m linr_tf query --model={path} "
        f"--query={cfg.query_id_feature}=u7 --filter='lang = \"de\"'")
  return path


def live_update(path, model, cfg, workdir, user, k):
  """Publishes one new item to a local log, ingests it, finds it filtered."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from linr_tf.index.live_index import LiveIndex  # pylint: disable=g-import-not-at-top
  from linr_tf.ingest import events as ev  # pylint: disable=g-import-not-at-top
  from linr_tf.ingest import ingestor as ingestor_lib  # pylint: disable=g-import-not-at-top
  from linr_tf.ingest import local_log  # pylint: disable=g-import-not-at-top
  live = LiveIndex.load(path)
  log_dir = os.path.join(workdir, "changes")
  item_id = f"live-{int(time.time())}"
  # A fresh post whose embedding is the user's own query vector, so it ranks
  # first wherever the filter lets it through.
  query_vec = model.query_tower({cfg.query_id_feature: tf.constant([user])})
  embedding = np.asarray(query_vec, np.float32)[0]
  schema = live.schema
  attrs = {}
  for a in live.attributes:
    if a in schema.numeric_attributes:
      attrs[a] = 0.5
    else:
      values = sorted(key.split("=", 1)[1] for key in schema.keys
                      if key.startswith(a + "="))
      prefer = {"lang": "en", "type": "post", "topic": "ai", "country": "us"}
      attrs[a] = prefer[a] if prefer.get(a) in values else values[0]
  with local_log.LocalLogWriter(log_dir) as writer:
    (offset,) = writer.append([ev.upsert_embedding(
        item_id, 1, embedding, attrs, time.time())])
  ing = ingestor_lib.Ingestor(live, local_log.LocalLogSource(log_dir),
                              os.path.join(workdir, "ingest"),
                              snapshot_interval_s=3600)
  ing.recover()
  while ing.offset is None or ing.offset < offset:
    ing.poll(timeout_s=1.0)
  fresh = ing.metrics()["freshness"]
  ing.snapshot()
  ing.close()
  parts = [f'{a} = "{attrs[a]}"' for a in live.attributes
           if a not in schema.numeric_attributes][:2]
  text = " AND ".join(parts + ["age_hours < 1"] if "age_hours" in
                      schema.numeric_attributes else parts)
  scores, ids, count = live.search({cfg.query_id_feature: np.array([user])},
                                   [text], k)
  ids = [x.decode() if isinstance(x, bytes) else str(x) for x in ids[0]]
  print(f"      published {item_id} ({', '.join(f'{a}={v}' for a, v in attrs.items())}) "
        f"to {log_dir} at offset {offset}; ingested, searchable "
        f"{fresh['max_s'] * 1000:.0f} ms after its event time")
  print_results(f"\n{cfg.query_id_feature}={user}  filter: {text}  (live index)",
                ids, scores[0], int(count[0]))
  rank = ids.index(item_id) + 1 if item_id in ids[:int(count[0])] else None
  print(f"      live item {item_id}: "
        + (f"rank {rank} under the filter" if rank else "NOT FOUND"))
  if not rank:
    raise UsageError(f"the ingested item {item_id} is not searchable")


def serving_env() -> dict:
  """os.environ with PYTHONPATH such that `python -m serving` finds `serving`
  next to this `linr_tf` (a source checkout or Bazel runfiles)."""
  path = [_ROOT] + [p for p in sys.path if p and p != _ROOT]
  return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


class ServerProcess:
  """`python -m serving` on free loopback ports, in a subprocess.

      with ServerProcess(["--model_base_path=out/demo/export"]) as server:
        print(server.rest_port, server.grpc_port)
  """

  def __init__(self, args, timeout_s: float = 300):
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "serving", "--address=127.0.0.1",
         "--rest_port=-1", "--grpc_port=-1", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=serving_env())
    self.lines = []
    self.rest_port = self.grpc_port = None
    ready = threading.Event()

    def read():
      for line in self.proc.stdout:
        self.lines.append(line)
        if line.startswith("LINR_SERVING_READY") and not ready.is_set():
          ports = dict(p.split("=") for p in line.split()[1:])
          self.rest_port, self.grpc_port = int(ports["rest"]), int(ports["grpc"])
          ready.set()
      ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout_s) or self.rest_port is None:
      self.stop()
      tail = "".join(self.lines[-20:]).strip()
      raise UsageError("the model server did not start"
                       + (f": {tail.splitlines()[-1]}" if tail else ""))

  def stop(self):
    if self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(30)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait(30)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.stop()


def serve_and_query(base_path, user, filter_text, k, model_name="linr"):
  """Serves `base_path` (`python -m serving`); one REST and one gRPC query."""
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  with ServerProcess([f"--model_name={model_name}",
                      f"--model_base_path={base_path}",
                      "--file_system_poll_wait_seconds=0"]) as server:
    print(f"      model server on 127.0.0.1: REST {server.rest_port}, "
          f"gRPC {server.grpc_port}")
    body = json.dumps({"instances": [{"user_id": user, "filter": filter_text,
                                      "k": k}]}).encode()
    url = (f"http://127.0.0.1:{server.rest_port}/v1/models/{model_name}"
           ":predict")
    req = urllib.request.Request(url, body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
      row = json.loads(resp.read())["predictions"][0]
    print_results(f"\nREST  POST {url}  filter: {filter_text}",
                  row["item_ids"], row["scores"], row["count"])
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      request = predict_pb2.PredictRequest()
      request.model_spec.name = model_name
      request.inputs["user_id"].CopyFrom(tf.make_tensor_proto([user]))
      request.inputs["filter"].CopyFrom(tf.make_tensor_proto([filter_text]))
      request.inputs["k"].CopyFrom(tf.make_tensor_proto(k, tf.int32))
      out = stub.Predict(request, timeout=60)
    ids = [x.decode() for x in tf.make_ndarray(out.outputs["item_ids"])[0]]
    print_results(f"\ngRPC  PredictionService/Predict  filter: {filter_text}",
                  ids, tf.make_ndarray(out.outputs["scores"])[0],
                  int(tf.make_ndarray(out.outputs["count"])[0]))
  print("      model server stopped")
