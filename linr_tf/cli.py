"""Command line: `python -m linr_tf {demo,generate,train,export,query,ingest}`.

    python -m linr_tf demo     # writes out/demo (or --workdir=...)
    python -m linr_tf generate --data_dir=out/data
    python -m linr_tf train  --config=configs/demo.json --data_dir=out/data --workdir=out/run
    python -m linr_tf export --workdir=out/run --export_dir=out/run/export
    python -m linr_tf query  --model=out/run/export/1 --query='user_id=u1' \
        --filter='lang = "en" AND type IN ("post", "article")' --k=10
    python -m linr_tf export --workdir=out/run --portable   # stock TF ops only
    python -m linr_tf demo --serve   # ... then one REST and one gRPC query
    python -m linr_tf ingest --model=out/run/export/1 --source=local:out/changes \
        --snapshots=out/ingest    # or --source=redis://127.0.0.1:6379/changes

The model server is its own program, `python -m serving` (serving/server.py);
`python -m linr_tf serve ...` runs it with the same flags.

A thin front end: flags in, calls to linr_tf.training, linr_tf.demo and
linr_tf.query out. Errors print one line (`error: ...`) and exit with status 1.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

import linr_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is used)
import tensorflow as tf

from linr_tf import config as config_lib
from linr_tf import data as data_lib
from linr_tf import demo as demo_lib
from linr_tf import errors
from linr_tf import export as export_lib
from linr_tf import query as query_lib
from linr_tf import training
from linr_tf.errors import UsageError

FLAGS = flags.FLAGS
DEFAULT_WORKDIR = "out/run"

flags.DEFINE_string("config", demo_lib.DEFAULT_CONFIG,
                    "Model/training config (JSON).")
flags.DEFINE_string("data_dir", None,
                    "Folder with items.csv and interactions.csv.")
flags.DEFINE_string("workdir", None,
                    "Training output: checkpoint, metadata, TensorBoard logs "
                    f"(default {DEFAULT_WORKDIR}; `demo`: "
                    f"{demo_lib.DEFAULT_WORKDIR}).")
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
flags.DEFINE_bool("serve", False, "`demo`: start the model server (`python -m "
                  "serving`), answer one REST and one gRPC query, stop it.")

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

COMMANDS = ("demo", "generate", "train", "export", "query", "ingest")
# What the command line reports as `error: <one line>` (anything else is a
# bug and keeps its traceback).
USER_ERRORS = (ValueError, OSError, NotImplementedError, tf.errors.OpError)


def _require(name):
  value = getattr(FLAGS, name)
  if not value:
    raise UsageError(f"--{name} is required")
  return value


def cmd_generate():
  paths = data_lib.generate_feed(_require("data_dir"), FLAGS.num_users,
                                 FLAGS.num_items, seed=FLAGS.seed)
  print(f"wrote {paths['items']} and {paths['interactions']}")


def cmd_train():
  workdir = FLAGS.workdir or DEFAULT_WORKDIR
  cfg = config_lib.load(FLAGS.config)
  _, metrics, _ = training.train(cfg, _require("data_dir"), workdir,
                                 FLAGS.epochs, FLAGS.verbose)
  print(f"held-out {training.recall_summary(metrics)}")
  print(f"checkpoint written to {workdir}")


def cmd_export():
  workdir = FLAGS.workdir or DEFAULT_WORKDIR
  model = training.restore(workdir)
  if FLAGS.portable:
    if model.cfg.mol is not None:
      raise ValueError("--portable does not support Mixture-of-Logits models (a `mol` "
                       "config section) yet: export without --portable")
    from linr_tf import export_portable  # pylint: disable=g-import-not-at-top
    path = export_portable.export_portable(
        model, FLAGS.export_dir or os.path.join(workdir, "export_portable"))
  else:
    path = export_lib.export(
        model, FLAGS.export_dir or os.path.join(workdir, "export"))
  print(f"SavedModel written to {path}")


def cmd_query():
  ids, scores, count = query_lib.query(_require("model"), FLAGS.query,
                                       FLAGS.filter, FLAGS.k)
  query_lib.print_results(f"filter: {FLAGS.filter or '(none)'}", ids, scores,
                          count)


def cmd_demo():
  demo_lib.run(workdir=FLAGS.workdir or demo_lib.DEFAULT_WORKDIR,
               config_path=FLAGS.config, data_dir=FLAGS.data_dir,
               num_users=FLAGS.num_users, num_items=FLAGS.num_items,
               seed=FLAGS.seed, epochs=FLAGS.epochs, verbose=FLAGS.verbose,
               k=FLAGS.k, serve=FLAGS.serve)


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


def main(argv):
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel("ERROR")
  if len(argv) != 2 or argv[1] not in COMMANDS:
    print(f"usage: python -m linr_tf {{{','.join(COMMANDS)}}} [--flags]\n"
          "       python -m serving [--flags]   (the model server)",
          file=sys.stderr)
    return 2
  try:
    globals()[f"cmd_{argv[1]}"]()
  except USER_ERRORS as e:
    print(f"error: {errors.error_line(e)}", file=sys.stderr)
    return 1
  return 0


def serve(args) -> None:
  """`python -m linr_tf serve ARGS` is `python -m serving --model_name=linr ARGS`.

  Replaces this process (the server is a separate program that depends on
  linr_tf, not the other way round); an explicit --model_name wins.
  """
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, "-m", "serving",
                             "--model_name=linr", *args],
            demo_lib.serving_env())


def run(argv=None):
  argv = list(sys.argv if argv is None else argv)
  if len(argv) > 1 and argv[1] == "serve":
    serve(argv[2:])
  if os.environ.get("BUILD_WORKING_DIRECTORY"):   # `bazel run //:demo`
    os.chdir(os.environ["BUILD_WORKING_DIRECTORY"])
  app.run(main, argv)
