"""Item and query embeddings of a trained demo model, cached for bench/quant_recall.py.

Generates the synthetic demo feed (configs/demo.json; a larger catalogue than
`python -m linr_tf demo` by default so that recall@100 is not trivial), trains
the two towers with `linr_tf.training.train` (same code as `python -m linr_tf
train`), then writes under --out (git-ignored out/ by default):

  items.npy    float32 [N, d]  item-tower outputs for the whole catalogue
  queries.npy  float32 [Q, d]  query-tower outputs of users that have held-out
                               engagements (the newest holdout_fraction of the
                               log, never trained on), one row per user
  meta.json    sizes, training time, held-out recall

  PYTHONPATH=. .venv/bin/python bench/quant_demo_embeddings.py [--num_items=100000]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import linr_tf  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS first)
import tensorflow as tf  # noqa: E402

from linr_tf import config as config_lib  # noqa: E402
from linr_tf import data as data_lib  # noqa: E402
from linr_tf import model as model_lib  # noqa: E402
from linr_tf import training  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


DEFAULT_OUT = os.path.join(REPO, "out", "quant_demo")


def load_or_build(out=DEFAULT_OUT):
  """(items, queries, meta) from the cache under `out`, building it first if absent."""
  if not os.path.exists(os.path.join(out, "meta.json")):
    build(argparse.Namespace(out=out, num_items=100_000, num_users=5_000, max_queries=1_000,
                             seed=1))
  with open(os.path.join(out, "meta.json")) as f:
    meta = json.load(f)
  return np.load(os.path.join(out, "items.npy")), np.load(os.path.join(out, "queries.npy")), meta


def build(args):
  cfg = config_lib.load(os.path.join(REPO, "configs", "demo.json"))
  data_dir = os.path.join(args.out, "data")
  t0 = time.time()
  data_lib.generate_feed(data_dir, args.num_users, args.num_items, seed=args.seed)
  t_gen = time.time() - t0
  t0 = time.time()
  model, metrics, _ = training.train(cfg, data_dir, os.path.join(args.out, "run"), verbose=2)
  t_train = time.time() - t0
  catalog, log = training.load_data(cfg, data_dir)
  items = model.embed_items(catalog).astype(np.float32)
  _, test_rows = model_lib.split_by_time(log, cfg.train.holdout_fraction)
  users = log.columns[cfg.query_id_feature][test_rows]
  users = list(dict.fromkeys(users.tolist()))[:args.max_queries]  # first held-out users
  feats = model_lib.query_features(cfg, {cfg.query_id_feature: np.array(users)})
  queries = model.query_tower({k: tf.convert_to_tensor(v) for k, v in feats.items()}).numpy()
  os.makedirs(args.out, exist_ok=True)
  np.save(os.path.join(args.out, "items.npy"), items)
  np.save(os.path.join(args.out, "queries.npy"), queries.astype(np.float32))
  meta = dict(num_items=len(items), dim=int(items.shape[1]), num_queries=len(queries),
              num_users=args.num_users, seed=args.seed, generate_s=round(t_gen, 1),
              train_s=round(t_train, 1), epochs=cfg.train.epochs,
              heldout={k: float(v) for k, v in metrics.items()})
  with open(os.path.join(args.out, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)
  print(json.dumps(meta, indent=1))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default=DEFAULT_OUT)
  parser.add_argument("--num_items", type=int, default=100_000)
  parser.add_argument("--num_users", type=int, default=5_000)
  parser.add_argument("--max_queries", type=int, default=1_000)
  parser.add_argument("--seed", type=int, default=1)
  build(parser.parse_args())


if __name__ == "__main__":
  main()
