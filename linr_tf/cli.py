"""Command line: `python -m linr_tf {demo,generate,train,export,query}`.

    python -m linr_tf demo --workdir=out/demo
    python -m linr_tf generate --data_dir=out/data
    python -m linr_tf train  --config=configs/demo.json --data_dir=out/data --workdir=out/run
    python -m linr_tf export --workdir=out/run --export_dir=out/run/export
    python -m linr_tf query  --model=out/run/export/1 --query='user_id=u1' \
        --filter='lang = "en" AND type IN ("post", "article")' --k=10
    python -m linr_tf export --workdir=out/run --portable   # stock TF ops only
    python -m linr_tf serve  --model_base_path=out/run/export --rest_port=8501
    python -m linr_tf demo --serve   # ... then one REST and one gRPC query
    python -m linr_tf ingest --model=out/run/export/1 --source=local:out/changes \
        --snapshots=out/ingest    # or --source=redis://127.0.0.1:6379/changes

Errors print one line (`error: ...`) and exit with status 1.
"""

import os
import re
import sys
import time

from absl import app
from absl import logging
from absl import flags

import linr_tf  # sets TF_USE_LEGACY_KERAS before TensorFlow is used
import tensorflow as tf

from linr_tf import config as config_lib
from linr_tf import data as data_lib
from linr_tf import export as export_lib
from linr_tf import model as model_lib

FLAGS = flags.FLAGS
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("config", os.path.join(_REPO, "configs", "demo.json"),
                    "Model/training config (JSON).")
flags.DEFINE_string("data_dir", None,
                    "Folder with items.csv and interactions.csv.")
flags.DEFINE_string("workdir", "out/run",
                    "Training output: checkpoint, metadata, TensorBoard logs.")
flags.DEFINE_string("export_dir", None,
                    "SavedModel base path (default: <workdir>/export).")
flags.DEFINE_string("model", None, "SavedModel version dir for `query`.")
flags.DEFINE_multi_string("query", [], "Query feature as name=value; repeat "
                          "for several features.")
flags.DEFINE_string("filter", "", "Attribute filter, e.g. 'lang = \"en\"'.")
flags.DEFINE_integer("k", 10, "Number of items to retrieve.")
flags.DEFINE_integer("epochs", None, "Override the config's epochs.")
flags.DEFINE_integer("num_users", 2000, "`generate`/`demo`: members.")
flags.DEFINE_integer("num_items", 5000, "`generate`/`demo`: posts.")
flags.DEFINE_integer("seed", 1, "`generate`/`demo`: data seed.")
flags.DEFINE_integer("verbose", 1, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")

flags.DEFINE_bool("portable", False, "`export`: stock TF ops only (no custom "
                  "op), loadable by an unmodified TF Serving.")
flags.DEFINE_bool("serve", False, "`demo`: start the model server, answer one "
                  "REST and one gRPC query, stop it.")
flags.DEFINE_string("model_name", "linr", "`serve`: model name.")
flags.DEFINE_string("model_base_path", None, "`serve`: SavedModel base path.")
flags.DEFINE_string("model_config_file", None, "`serve`: text ModelServerConfig.")
flags.DEFINE_string("address", "127.0.0.1", "`serve`: address to bind.")
flags.DEFINE_integer("rest_port", 8501, "`serve`: REST port (0 = off).")
flags.DEFINE_integer("grpc_port", 8500, "`serve`: gRPC port (0 = off).")
flags.DEFINE_string("batching_parameters_file", None,
                    "`serve`: TF Serving batching parameters (enables batching).")

flags.DEFINE_string("source", None, "`ingest`: change stream, local:<dir> (the "
                    "embedded segment log) or redis://127.0.0.1:<port>/<stream>"
                    "[?group=..&consumer=..].")
flags.DEFINE_string("snapshots", None, "`ingest`: snapshot directory (index "
                    "state + the stream offset it covers).")
flags.DEFINE_string("dead_letter", None, "`ingest`: dead-letter log (default "
                    "<snapshots>/dead_letter.jsonl).")
flags.DEFINE_integer("ingest_batch_size", 4096, "`ingest`: records per read.")
flags.DEFINE_float("snapshot_interval_s", 60.0, "`ingest`: seconds between "
                   "snapshots.")
flags.DEFINE_integer("snapshot_every", 1_000_000, "`ingest`: also snapshot "
                     "after this many records.")
flags.DEFINE_integer("keep_snapshots", 3, "`ingest`: snapshots kept.")
flags.DEFINE_float("log_interval_s", 30.0, "`ingest`: seconds between metric "
                   "log lines.")
flags.DEFINE_string("metrics_file", None, "`ingest`: JSON file rewritten with "
                    "the counters and freshness histogram summary.")
flags.DEFINE_float("exit_when_idle_s", None, "`ingest`: stop (after a final "
                   "snapshot) when no record came for this long.")

COMMANDS = ("demo", "generate", "train", "export", "query", "serve", "ingest")


class UsageError(Exception):
  pass


def _require(name):
  value = getattr(FLAGS, name)
  if not value:
    raise UsageError(f"--{name} is required")
  return value


def _load_data(cfg, data_dir):
  catalog = data_lib.read_items(os.path.join(data_dir, "items.csv"), cfg)
  log = data_lib.read_interactions(
      os.path.join(data_dir, "interactions.csv"), cfg, catalog)
  return catalog, log


def cmd_generate():
  paths = data_lib.generate_feed(_require("data_dir"), FLAGS.num_users,
                                 FLAGS.num_items, seed=FLAGS.seed)
  print(f"wrote {paths['items']} and {paths['interactions']}")


def train(cfg, data_dir, workdir, epochs=None, verbose=2):
  """Trains, builds the index, saves a checkpoint; returns (model, metrics)."""
  catalog, log = _load_data(cfg, data_dir)
  model = model_lib.RetrievalModel.from_data(cfg, catalog, log)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(cfg.train.learning_rate))
  train_ds, test_ds = model_lib.make_datasets(cfg, catalog, log)
  tf.keras.utils.set_random_seed(cfg.train.seed)
  callbacks = [model_lib.RefreshIndex(model, catalog),
               tf.keras.callbacks.TensorBoard(os.path.join(workdir, "logs"))]
  history = model.fit(train_ds, validation_data=test_ds,
                      epochs=epochs or cfg.train.epochs, callbacks=callbacks,
                      verbose=verbose)
  model.build_index(catalog)
  metrics = model.evaluate(test_ds, return_dict=True, verbose=0)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "model.json"), "w", encoding="utf-8") as f:
    f.write(model.metadata())
  tf.train.Checkpoint(model=model).write(os.path.join(workdir, "ckpt"))
  return model, metrics, history


def restore(workdir):
  path = os.path.join(workdir, "model.json")
  if not os.path.exists(path):
    raise UsageError(f"{path} not found: run `train` with --workdir={workdir}")
  with open(path, encoding="utf-8") as f:
    model = model_lib.RetrievalModel.from_metadata(f.read())
  tf.train.Checkpoint(model=model).read(
      os.path.join(workdir, "ckpt")).expect_partial()
  return model


def _recall_line(metrics):
  return ", ".join(
      f"recall@{k}={metrics[f'factorized_top_k/top_{k}_categorical_accuracy']:.3f}"
      for k in model_lib.TOP_KS)


def cmd_train():
  cfg = config_lib.load(FLAGS.config)
  _, metrics, _ = train(cfg, _require("data_dir"), FLAGS.workdir, FLAGS.epochs,
                        FLAGS.verbose)
  print(f"held-out {_recall_line(metrics)}")
  print(f"checkpoint written to {FLAGS.workdir}")


def cmd_export():
  model = restore(FLAGS.workdir)
  if FLAGS.portable:
    from linr_tf import export_portable  # pylint: disable=g-import-not-at-top
    path = export_portable.export_portable(
        model, FLAGS.export_dir or os.path.join(FLAGS.workdir,
                                                "export_portable"))
  else:
    path = export_lib.export(
        model, FLAGS.export_dir or os.path.join(FLAGS.workdir, "export"))
  print(f"SavedModel written to {path}")


def cmd_serve():
  from serving import server as server_lib  # pylint: disable=g-import-not-at-top
  argv = [f"--address={FLAGS.address}", f"--rest_port={FLAGS.rest_port}",
          f"--grpc_port={FLAGS.grpc_port}"]
  if FLAGS.model_config_file:
    argv.append(f"--model_config_file={FLAGS.model_config_file}")
  else:
    argv += [f"--model_name={FLAGS.model_name}",
             f"--model_base_path={_require('model_base_path')}"]
  if FLAGS.batching_parameters_file:
    argv.append(f"--batching_parameters_file={FLAGS.batching_parameters_file}")
  status = server_lib.main(argv)
  if status:
    raise UsageError("the model server did not start")


def demo_serve(base_path, user, filter_text, k):
  """Starts the server on free loopback ports; one REST and one gRPC query."""
  import json  # pylint: disable=g-import-not-at-top
  import urllib.request  # pylint: disable=g-import-not-at-top
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  from serving import config as serving_config  # pylint: disable=g-import-not-at-top
  from serving import server as server_lib  # pylint: disable=g-import-not-at-top
  server = server_lib.Server(
      serving_config.single_model_config("linr", base_path),
      rest_port=-1, grpc_port=-1, poll_seconds=0).start()
  try:
    print(f"      model server on 127.0.0.1: REST {server.rest_port}, "
          f"gRPC {server.grpc_port}")
    body = json.dumps({"instances": [{"user_id": user, "filter": filter_text,
                                      "k": k}]}).encode()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/linr:predict"
    req = urllib.request.Request(url, body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
      row = json.loads(resp.read())["predictions"][0]
    print_results(f"\nREST  POST {url}  filter: {filter_text}",
                  row["item_ids"], row["scores"], row["count"])
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      request = predict_pb2.PredictRequest()
      request.model_spec.name = "linr"
      request.inputs["user_id"].CopyFrom(tf.make_tensor_proto([user]))
      request.inputs["filter"].CopyFrom(tf.make_tensor_proto([filter_text]))
      request.inputs["k"].CopyFrom(tf.make_tensor_proto(k, tf.int32))
      out = stub.Predict(request, timeout=60)
    ids = [x.decode() for x in tf.make_ndarray(out.outputs["item_ids"])[0]]
    print_results(f"\ngRPC  PredictionService/Predict  filter: {filter_text}",
                  ids, tf.make_ndarray(out.outputs["scores"])[0],
                  int(tf.make_ndarray(out.outputs["count"])[0]))
  finally:
    server.stop()
  print("      model server stopped")


def cmd_ingest():
  """Applies a change stream to the exported index until SIGTERM/SIGINT."""
  import json  # pylint: disable=g-import-not-at-top
  import signal  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  from linr_tf.index.live_index import LiveIndex  # pylint: disable=g-import-not-at-top
  from linr_tf import ingest  # pylint: disable=g-import-not-at-top
  from linr_tf.ingest import ingestor as ingestor_lib  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  live = LiveIndex.load(_require("model"))
  source = ingest.open_source(_require("source"))
  ing = ingestor_lib.Ingestor(
      live, source, _require("snapshots"), dead_letter_path=FLAGS.dead_letter,
      batch_size=FLAGS.ingest_batch_size,
      snapshot_interval_s=FLAGS.snapshot_interval_s,
      snapshot_every=FLAGS.snapshot_every,
      keep_snapshots=FLAGS.keep_snapshots, log_interval_s=FLAGS.log_interval_s,
      metrics_path=FLAGS.metrics_file)
  stop = threading.Event()
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: stop.set())
  offset = ing.recover()
  print(f"ingest: ready, resuming after offset {json.dumps(offset)} of "
        f"{source.description}", flush=True)
  try:
    m = ing.run(stop, exit_when_idle_s=FLAGS.exit_when_idle_s)
  finally:
    ing.close()
  f = m["freshness"]
  print(f"ingest: stopped at offset {json.dumps(m['offset'])}: "
        f"{m['applied']} applied, {m['duplicate']} duplicate, {m['dead_lettered']} "
        f"dead-lettered; freshness p50 {f['p50_s']} s, p99 {f['p99_s']} s",
        flush=True)


def demo_live_update(path, model, cfg, workdir, user, k):
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
  query = model.query_tower({cfg.query_id_feature: tf.constant([user])})
  embedding = np.asarray(query, np.float32)[0]
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


def parse_query(pairs, signature):
  inputs = signature.structured_input_signature[1]
  names = sorted(n for n in inputs if n not in ("filter", "k"))
  features = {}
  for pair in pairs:
    name, sep, value = pair.partition("=")
    if not sep:
      raise UsageError(f"--query expects name=value, got {pair!r}")
    if name not in names:
      raise UsageError(f"unknown query feature '{name}' (this model takes "
                       f"{', '.join(names)})")
    dtype = inputs[name].dtype
    try:
      features[name] = tf.constant([float(value) if dtype.is_floating
                                    else value], dtype)
    except ValueError:
      raise UsageError(f"query feature '{name}' must be a number, got "
                       f"{value!r}") from None
  missing = [n for n in names if n not in features]
  if missing:
    raise UsageError(f"missing query feature(s) {missing}: pass --query "
                     f"{missing[0]}=...")
  return features


def query(model_dir, pairs, filter_text, k):
  loaded = linr_tf.load(model_dir)
  fn = loaded.signatures["serving_default"]
  feats = parse_query(pairs, fn)
  out = fn(filter=tf.constant([filter_text]), k=tf.constant(k, tf.int32),
           **feats)
  return ([x.decode() for x in out["item_ids"][0].numpy()],
          out["scores"][0].numpy(), int(out["count"][0]))


def print_results(title, ids, scores, count, extra=None):
  print(title)
  print(f"  {count} result(s)")
  for rank, (item, score) in enumerate(zip(ids[:count], scores[:count]), 1):
    note = f"  {extra[item]}" if extra else ""
    print(f"  {rank:3d}. {item:<10s} {score:+.4f}{note}")


def cmd_query():
  ids, scores, count = query(_require("model"), FLAGS.query, FLAGS.filter,
                             FLAGS.k)
  print_results(f"filter: {FLAGS.filter or '(none)'}", ids, scores, count)


def cmd_demo():
  start = time.time()
  workdir = FLAGS.workdir if FLAGS.workdir != "out/run" else "out/demo"
  data_dir = FLAGS.data_dir or os.path.join(workdir, "data")
  cfg = config_lib.load(FLAGS.config)
  print(f"[1/5] generating a synthetic feed in {data_dir}")
  data_lib.generate_feed(data_dir, FLAGS.num_users, FLAGS.num_items,
                         seed=FLAGS.seed)
  print("[2/5] training the two towers (TFRS in-batch softmax, log-q "
        "corrected); index rebuilt before each evaluation")
  model, metrics, _ = train(cfg, data_dir, workdir, FLAGS.epochs,
                            FLAGS.verbose)
  print(f"      held-out {_recall_line(metrics)}")
  print("[3/5] exporting one SavedModel (towers + index)")
  path = export_lib.export(model, os.path.join(workdir, "export"))
  print(f"      {path}")
  print("[4/5] querying the exported model")
  catalog = data_lib.read_items(os.path.join(data_dir, "items.csv"), cfg)
  describe = {i: " ".join(f"{a}={catalog.columns[a][n]}"
                          for a in cfg.filter_attributes)
              for n, i in enumerate(catalog.ids)}
  user = "u0"
  for text in ("", 'lang = "en" AND type IN ("post", "article")',
               'topic = "ai" AND country IN ("us", "in")',
               '(lang = "de" OR lang = "fr") AND NOT type = "job" '
               'AND age_hours < 72'):
    ids, scores, count = query(path, [f"{cfg.query_id_feature}={user}"], text,
                               FLAGS.k)
    print_results(f"\n{cfg.query_id_feature}={user}  filter: "
                  f"{text or '(none)'}", ids, scores, count, describe)
  print("\n[5/5] live update: publish a new post to the change log, ingest "
        "it into the in-model index, query it under a filter")
  demo_live_update(path, model, cfg, workdir, user, FLAGS.k)
  if FLAGS.serve:
    print("\n[6/6] serving the export (TF Serving REST and gRPC APIs)")
    demo_serve(os.path.dirname(path), user, 'lang = "en" AND type = "post"',
               FLAGS.k)
  print(f"\ndemo finished in {time.time() - start:.0f} s; try:\n  "
        f".venv/bin/python -m linr_tf query --model={path} "
        f"--query={cfg.query_id_feature}=u7 --filter='lang = \"de\"'")


def op_error_line(message: str) -> str:
  """The one informative line of a TensorFlow runtime error message."""
  noise = ("Graph execution error", "Detected at node", "<stack traces",
           "[[", "Traceback")
  for line in message.splitlines():
    line = line.strip()
    if line and not line.startswith(noise):
      line = line.split(" [[")[0]
      match = re.match(r"assertion failed: \[(.*?)\]", line)
      return match.group(1) if match else line
  return message.strip() or "TensorFlow error"


def main(argv):
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel("ERROR")
  if len(argv) != 2 or argv[1] not in COMMANDS:
    print(f"usage: python -m linr_tf {{{','.join(COMMANDS)}}} [--flags]",
          file=sys.stderr)
    return 2
  try:
    globals()[f"cmd_{argv[1]}"]()
  except (UsageError, ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except tf.errors.OpError as e:
    print(f"error: {op_error_line(e.message)}", file=sys.stderr)
    return 1
  return 0


def run():
  app.run(main)
