"""GPU retrieval inside TensorFlow (H200): our ops and SavedModel signatures
against stock TF and stock PyTorch on the same data, in one process.

    source .tfw/small/device_setup.sh && python3 bench/tf_gpu.py --out $OUT [--sizes 15500000,100000000]

Data: N x 128 float16 items with one 32-bit attribute word per item: `__live__`,
`geo` (9 values), `region` (20) and `company` (2, 5 % "c1"). Filters:
  high pass  geo = g1 AND company != c1                (~10.6 %, like LiNR's
                                                         geo + exclude-company)
  low pass   geo = g1 AND region = r1                  (~0.56 %)
K = 2000, B = 1 and 16, p50 / p95 over timed calls, each synchronised by
fetching its outputs.

Levels: "op" (filter compile + LinrFilterMask + top-k in one tf.function over
GPU variables) and "signature" (`retrieve_embeddings` of a SavedModel written
and loaded in this process, variables placed by the loader on the GPU).
Anchors with the pass masks precomputed and untimed: stock TF `tf.where` +
`top_k` and `tf.boolean_mask`/`gather` + matmul + `top_k`; PyTorch V1
(matmul + masked_fill + topk) and V2 (nonzero + index_select + matmul +
topk), in their own process (bench/gpu/torch_anchors.py). Floor: the item
bytes over the read bandwidth (a float16 sum) measured in this run.
Writes <out>/tf_gpu.json (rows + summary) and <out>/tf_gpu.log.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402  (TF_USE_LEGACY_KERAS before TensorFlow)
import tensorflow as tf  # noqa: E402

for _gpu in tf.config.list_physical_devices("GPU"):
  tf.config.experimental.set_memory_growth(_gpu, True)   # leave room for torch

from linr_tf import ops  # noqa: E402
from linr_tf.attributes import AttributeSchema, compile_filters  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tf_profile import profile  # noqa: E402
from timing import timed  # noqa: E402

DIM, K = 128, 2000
GEO, REGION = [f"g{i}" for i in range(9)], [f"r{i}" for i in range(20)]
FILTERS = {"high": "geo = g1 AND company != c1", "low": "geo = g1 AND region = r1"}
KEYS = (["__live__"] + [f"company={c}" for c in ("c0", "c1")] + [f"geo={g}" for g in GEO]
        + [f"region={r}" for r in REGION])


def log(*a):
  print(*a, flush=True)


def make_bits(n, rng):
  """int32 [n, 1] bitsets following KEYS (sorted by AttributeSchema)."""
  schema = AttributeSchema(KEYS)
  bit = {k: i for i, k in enumerate(schema.keys)}
  geo = rng.integers(0, 9, n)
  region = rng.integers(0, 20, n)
  company = (rng.random(n) < 0.05).astype(np.int64)
  words = (np.uint32(1) << np.uint32(bit["__live__"])) * np.ones(n, np.uint32)
  geo_bits = np.array([bit[f"geo={g}"] for g in GEO], np.uint32)
  region_bits = np.array([bit[f"region={r}"] for r in REGION], np.uint32)
  comp_bits = np.array([bit["company=c0"], bit["company=c1"]], np.uint32)
  words |= np.uint32(1) << geo_bits[geo]
  words |= np.uint32(1) << region_bits[region]
  words |= np.uint32(1) << comp_bits[company]
  return schema, words.view(np.int32).reshape(n, 1), (geo, region, company)


def measure_floor(nbytes):
  """Read bandwidth (bytes/s): a float16 sum over `nbytes` on the GPU, in TF."""
  with tf.device("/GPU:0"):
    x = tf.Variable(tf.ones([nbytes // 2], tf.float16))
    total = tf.function(lambda: tf.reduce_sum(x))
    for _ in range(3):
      total().numpy()
    t0 = time.perf_counter()
    reps = 10
    for _ in range(reps):
      total().numpy()
    bw = nbytes * reps / (time.perf_counter() - t0)
  del x
  return bw


def op_level(vectors, bits, bit_keys, filters_by_b):
  """Our ops: compile + mask + auto top-k, one tf.function."""
  @tf.function
  def search(q, f):
    program = compile_filters(f, bit_keys)
    # uint32 variable (int32 ones stay in host memory), int32 view for the op.
    passing = ops.filter_mask(tf.bitcast(bits.read_value(), tf.int32), program)
    return ops.top_k_over_mask(q, vectors, passing, K, "auto")
  return search


def stock_tf(vectors, pass_bool):
  @tf.function
  def where_topk(q, m):
    s = tf.matmul(tf.cast(q, tf.float16), vectors, transpose_b=True)
    s = tf.where(m, tf.cast(s, tf.float32), float("-inf"))
    return tf.math.top_k(s, K)

  @tf.function
  def boolean_mask_topk(q, m):
    outs = []
    for i in range(q.shape[0]):
      idx = tf.where(m[i])[:, 0]
      # A tensor, not the variable: a ResourceGather would switch the
      # variable to copy-on-read, and every later read (ours too) would copy it.
      rows = tf.gather(tf.convert_to_tensor(vectors), idx)
      s = tf.linalg.matvec(rows, tf.cast(q[i], tf.float16))
      outs.append(tf.math.top_k(tf.cast(s, tf.float32), tf.minimum(K, tf.size(s))).values[:1])
    return outs
  return where_topk, boolean_mask_topk


def signature_level(n, vectors_np16, bits_np, schema, queries_np, args):
  """retrieve_embeddings of a saved + loaded SavedModel (variables on GPU)."""
  from linr_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from linr_tf import export as export_lib  # pylint: disable=g-import-not-at-top
  from linr_tf.model import RetrievalModel  # pylint: disable=g-import-not-at-top
  cfg = config_lib.from_dict({
      "query_features": [{"name": "user_id", "type": "id"}],
      "item_features": [{"name": "item_id", "type": "id"}, {"name": "geo", "type": "categorical"},
                        {"name": "region", "type": "categorical"},
                        {"name": "company", "type": "categorical"}],
      "filter_attributes": ["company", "geo", "region"], "embedding_dim": DIM,
      "hidden_units": [], "index": {"vectors": "float16"}})
  model = RetrievalModel(cfg, {"user_id": ["u0"], "item_id": ["i0"], "geo": GEO,
                               "region": REGION, "company": ["c0", "c1"]}, schema.keys)
  t0 = time.perf_counter()
  model.index.assign(np.char.add("i", np.arange(n).astype(str)).astype(object),
                     vectors_np16.astype(np.float32), bits_np)
  log(f"signature: assign {n} items {time.perf_counter() - t0:.1f} s")
  base = tempfile.mkdtemp(dir=args.scratch)
  t0 = time.perf_counter()
  path = export_lib.export(model, base)
  log(f"signature: export {time.perf_counter() - t0:.1f} s")
  del model
  t0 = time.perf_counter()
  loaded = linr_tf.load(path)
  log(f"signature: load {time.perf_counter() - t0:.1f} s; vectors on "
      f"{loaded.index.vectors.device}, attributes on {loaded.index.attributes.device}")
  fn = loaded.signatures["retrieve_embeddings"]
  return fn, {"vectors": loaded.index.vectors.device,
              "attributes": loaded.index.attributes.device}


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--out", required=True)
  p.add_argument("--sizes", default="15500000")
  p.add_argument("--signature_max_n", type=int, default=15_500_000)
  p.add_argument("--scratch", default="/tmp")
  p.add_argument("--skip_torch", action="store_true")
  p.add_argument("--profile", action="store_true",
                 help="also record TF profiler summaries (host ops, GPU kernels) per cell")
  args = p.parse_args()
  os.makedirs(args.out, exist_ok=True)
  gpus = tf.config.list_physical_devices("GPU")
  device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"
  log(f"TF {tf.__version__}, device {device}, op library {ops.load_library().__file__ if hasattr(ops.load_library(), '__file__') else ''}")
  torch_all = {}
  if not args.skip_torch:   # PyTorch in its own process (see bench/gpu/torch_anchors.py)
    path = os.path.join(args.out, "torch_anchors.json")
    rc = subprocess.call([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "gpu", "torch_anchors.py"),
                          "--sizes", args.sizes, "--out", path])
    if rc == 0:
      with open(path) as fh:
        torch_all = json.load(fh)
    else:
      log(f"torch anchors failed (rc {rc})")
  rng = np.random.default_rng(0)
  queries_np = rng.normal(size=(16, DIM)).astype(np.float32)
  rows, extra = [], {"device": device, "torch_anchors": "separate process, same machine and call"}
  for n in [int(x) for x in args.sizes.split(",")]:
    nbytes = n * DIM * 2
    bw = measure_floor(nbytes) if not args.skip_torch else 4.2e12
    floor_ms = nbytes / bw * 1e3               # one read of the items
    log(f"n={n}: read bandwidth {bw / 1e12:.2f} TB/s (fp16 sum), floor {floor_ms:.3f} ms")
    schema, bits_np, (geo, region, company) = make_bits(n, rng)
    pass_np = {"high": (geo == 1) & (company == 0), "low": (geo == 1) & (region == 1)}
    with tf.device("/GPU:0"):
      # Generated on the GPU in chunks (100M x 128 would take minutes in numpy).
      chunks = [tf.cast(tf.random.stateless_normal([min(1 << 24, n - i), DIM], [i, 7]),
                        tf.float16) for i in range(0, n, 1 << 24)]
      vectors = tf.Variable(tf.concat(chunks, 0), trainable=False)
      del chunks
      bits = tf.Variable(bits_np.view(np.uint32), trainable=False)
      bit_keys = tf.constant(schema.keys)
      pass_tf = {k: tf.constant(np.broadcast_to(v, (16, n))) for k, v in pass_np.items()}
    log(f"n={n}: vectors on {vectors.device}, bits on {bits.device}")
    search = op_level(vectors, bits, bit_keys, None)
    where_topk, bm_topk = stock_tf(vectors, pass_tf)
    torch_ms = {(f, b): torch_all[f"{n}|{f}|{b}"] for f in FILTERS for b in (1, 16)
                if f"{n}|{f}|{b}" in torch_all}
    sig = None
    if n <= args.signature_max_n:
      try:
        sig, placed = signature_level(n, vectors.numpy(), bits_np, schema, queries_np, args)
        extra[f"signature_placement_{n}"] = placed
      except Exception:  # pylint: disable=broad-except
        log("signature level failed:\n" + traceback.format_exc())
    for fname, text in FILTERS.items():
      rate = float(pass_np[fname].mean())
      for b in (1, 16):
        q = tf.constant(queries_np[:b])
        f = tf.constant([text] * b)
        m = pass_tf[fname][:b]
        res = {}
        try:
          ours = timed(lambda: [t.numpy() for t in search(q, f)])
          res["tf_where_ms"] = timed(lambda: [t.numpy() for t in where_topk(q, m)])[0]
          res["tf_boolean_mask_ms"] = timed(lambda: [t.numpy() for t in bm_topk(q, m)], warmup=1, iters=5)[0]
        except Exception:  # pylint: disable=broad-except
          log(f"op level {fname} B={b} failed:\n" + traceback.format_exc())
          continue
        t = torch_ms.get((fname, b), {})
        torch_best = min([t[v][0] for v in t]) if t else None
        base = dict(n=n, batch=b, pass_rate=rate, k=K, device=device, floor_ms=floor_ms,
                    tf_where_ms=res["tf_where_ms"], tf_boolean_mask_ms=res["tf_boolean_mask_ms"],
                    torch_ms={v: {"p50": t[v][0], "p95": t[v][1]} for v in t},
                    torch_best_ms=torch_best)
        rows.append(dict(base, level="op", ours_p50_ms=ours[0], ours_p95_ms=ours[1]))
        log(json.dumps(rows[-1]))
        if args.profile:
          extra.setdefault("profile", {})[f"op|{n}|{fname}|{b}"] = profile(
              lambda: [t.numpy() for t in search(q, f)], logdir=tempfile.mkdtemp(dir=args.scratch))
        if sig is not None:
          call = lambda: [v.numpy() for v in sig(query_embedding=q, filter=f,
                                                  k=tf.constant(K)).values()]
          try:
            s50, s95 = timed(call)
            rows.append(dict(base, level="signature", ours_p50_ms=s50, ours_p95_ms=s95))
            log(json.dumps(rows[-1]))
            if args.profile:
              extra.setdefault("profile", {})[f"signature|{n}|{fname}|{b}"] = profile(
                  call, logdir=tempfile.mkdtemp(dir=args.scratch))
          except Exception:  # pylint: disable=broad-except
            log(f"signature {fname} B={b} failed:\n" + traceback.format_exc()[-1500:])
            sig = None
        write(args.out, rows, extra)
    del vectors, bits, pass_tf, search, where_topk, bm_topk, sig
  log("summary " + json.dumps(write(args.out, rows, extra)))


def write(out, rows, extra):
  summary = summarize(rows)
  with open(os.path.join(out, "tf_gpu.json"), "w") as fh:
    json.dump({"rows": rows, "summary": summary, **extra}, fh, indent=1)
  return summary


def summarize(rows):
  def pick(n, f_low, b):
    for r in rows:
      if (r["level"] == "signature" and r["n"] == n and r["batch"] == b
          and (r["pass_rate"] < 0.05) == f_low):
        return r["ours_p95_ms"]
    return None
  n15 = 15_500_000
  b16 = [r for r in rows if r["batch"] == 16 and r["level"] == "op"]
  speedups = [min(r["tf_where_ms"], r["tf_boolean_mask_ms"]) / r["ours_p50_ms"] for r in b16]
  ratios = [r["ours_p50_ms"] / r["torch_best_ms"] for r in rows if r.get("torch_best_ms")]
  return {
      "sig_p95_ms_15m_high_b1": pick(n15, False, 1), "sig_p95_ms_15m_high_b16": pick(n15, False, 16),
      "sig_p95_ms_15m_low_b1": pick(n15, True, 1), "sig_p95_ms_15m_low_b16": pick(n15, True, 16),
      "speedup_vs_best_stock_tf_b16": min(speedups) if speedups else None,
      "worst_ratio_vs_torch": max(ratios) if ratios else None,
      "serving_qps_c64": None, "serving_p99_ms_c64": None, "serving_errors": None,
      "p95_regression_1k_upserts": None, "gpu_tests_passed": None, "gpu_tests_failed": None,
  }


if __name__ == "__main__":
  main()
