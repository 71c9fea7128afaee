"""GPU cost of the ranking stage (issue 16): `retrieve_and_rank` against
`serving_default` of one exported SavedModel, inside TensorFlow on the GPU.

Not run yet (no GPU on the machine that wrote it). On the H200, after
`source bench/gpu/device_tf_setup.sh` (the GPU op build):

  python3 bench/rank_gpu.py --items 15500000 --out $OUT/rank_gpu.json

Builds an untrained `JointModel` over `--items` random unit vectors
(d = 128, float16 by default; two dense and one id ranking feature), exports
it on the host (`--export_dir`, a temp dir by default), loads it (the loader
puts the index variables in HBM), and times both signatures at B = 1 / 16,
k_retrieve = 2000, k_final = 50, with no filter and with a ~11 % filter
(p50 / p95 of `--iters` calls, outputs fetched). `rank_stage_overhead` =
retrieve_and_rank p50 / serving_default p50 - 1 (the `gpu_rank_stage_overhead`
of bench/results/rank.json is its maximum over the unfiltered rows).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import linr_tf  # noqa: E402
from linr_tf import config as config_lib  # noqa: E402
from linr_tf.attributes import AttributeSchema  # noqa: E402
from linr_tf.export import export  # noqa: E402
from linr_tf.ranking.config import RankingConfig  # noqa: E402
from linr_tf.ranking.model import JointModel  # noqa: E402
from timing import timed  # noqa: E402


def build(n, d, vectors_dtype, seed=0):
  f = config_lib.FeatureSpec
  cfg = config_lib.Config(
      query_features=[f("user_id", "id", 16)],
      item_features=[f("item_id", "id", 16), f("genre", "categorical", 4)],
      filter_attributes=["genre"], embedding_dim=d, hidden_units=[128],
      index=config_lib.IndexConfig(vectors=vectors_dtype),
      ranking=RankingConfig(dense_features=["a", "b"], id_features={"g": 20},
                            hidden_units=[64, 32]))
  rng = np.random.default_rng(seed)
  genre = np.where(rng.random(n) < 0.11, "x", "y").astype(object)
  schema = AttributeSchema.from_columns({"genre": genre}, {})
  model = JointModel(cfg, {"user_id": [f"u{i}" for i in range(100)], "item_id": ["i0"],
                           "genre": ["x", "y"]}, schema.keys)
  with tf.device("/CPU:0"):
    vectors = np.empty((n, d), np.float32)
    for s in range(0, n, 1 << 20):
      v = rng.normal(size=(min(1 << 20, n - s), d)).astype(np.float32)
      vectors[s:s + len(v)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    model.index.assign(np.array([f"i{i}" for i in range(n)]), vectors,
                       schema.encode({"genre": genre}),
                       rank_dense=rng.normal(size=(n, 2)).astype(np.float32),
                       rank_ids=rng.integers(0, 20, (n, 1)))
  return model


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--items", type=int, default=15_500_000)
  ap.add_argument("--dim", type=int, default=128)
  ap.add_argument("--vectors", default="float16")
  ap.add_argument("--k_retrieve", type=int, default=2000)
  ap.add_argument("--k_final", type=int, default=50)
  ap.add_argument("--iters", type=int, default=50)
  ap.add_argument("--export_dir", default=None)
  ap.add_argument("--out", required=True)
  args = ap.parse_args()
  export_dir = args.export_dir or tempfile.mkdtemp(prefix="rank_gpu_")
  path = export(build(args.items, args.dim, args.vectors), export_dir)
  loaded = linr_tf.load(path)
  sigs = loaded.signatures
  gpus = tf.config.list_logical_devices("GPU")
  out = {"items": args.items, "dim": args.dim, "vectors": args.vectors,
         "k_retrieve": args.k_retrieve, "k_final": args.k_final,
         "devices": [g.name for g in gpus], "vectors_device": loaded.index.vectors.device,
         "rows": []}
  for b in (1, 16):
    users = tf.constant([f"u{i}" for i in range(b)])
    for filt in ("", 'genre = "x"'):
      filters = tf.constant([filt] * b)
      base = timed(lambda: sigs["serving_default"](
          user_id=users, filter=filters, k=tf.constant(args.k_retrieve))["item_ids"].numpy(),
          warmup=5, iters=args.iters)
      both = timed(lambda: sigs["retrieve_and_rank"](
          user_id=users, filter=filters, k_retrieve=tf.constant(args.k_retrieve),
          k_final=tf.constant(args.k_final))["item_ids"].numpy(), warmup=5, iters=args.iters)
      row = {"batch": b, "filter": filt, "serving_default_p50_ms": base[0],
             "serving_default_p95_ms": base[1], "retrieve_and_rank_p50_ms": both[0],
             "retrieve_and_rank_p95_ms": both[1], "rank_stage_overhead": both[0] / base[0] - 1}
      print(json.dumps(row), flush=True)
      out["rows"].append(row)
  out["gpu_rank_stage_overhead"] = max(r["rank_stage_overhead"] for r in out["rows"]
                                       if r["filter"] == "")
  with open(args.out, "w") as f:
    json.dump(out, f, indent=1)
  if args.export_dir is None:
    shutil.rmtree(export_dir, ignore_errors=True)


if __name__ == "__main__":
  main()
