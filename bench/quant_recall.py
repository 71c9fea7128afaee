"""Quantized KNN benchmark (issue 4): Sign-OPORP recall, Hamming top-k speed, 100M scale.

One process, four parts (each writes its rows to bench/results/quant.json):

(a) recall@100 of two-stage search (top-(r k) by codes, exact float rerank)
    against exact dot-product search, m in {64, 128, 256, 512}, r in {1, 4,
    10}: random unit vectors (N = 100k, d = 128 and d = 64) and the trained
    demo model's embeddings (bench/quant_demo_embeddings.py: N = 100k items,
    d = 64, queries = query-tower outputs of held-out users; cached under
    out/quant_demo, built on first use);
(b) FAISS IndexLSH at the same number of bits on the same data: recall (its
    top r k by Hamming, same exact rerank) and stage-1 latency next to
    SignOPORP + LinrHammingTopK, B = 64;
(c) LinrHammingTopK vs FAISS IndexBinaryFlat (IDSelectorBitmap for the
    filter), 1M x 128-bit codes, k = 100, B in {1, 64}, pass 100 / 10 / 1 %;
    results asserted equal to FAISS's in the same run; timings interleaved
    (op, FAISS, op, ...), median and min wall ms;
(d) --scale: a 100M x 128-bit index (SignOPORP codes of random 64-d vectors,
    built in chunks): build time, RSS growth, bytes/item, query latency at
    B = 1 and 64 without and with a 10 % filter.

  PYTHONPATH=. .venv/bin/python bench/quant_recall.py [--quick] [--scale] [--plot]

--plot also writes bench/quant_recall.png from the JSON.
"""

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import ops  # noqa: E402
from linr_tf.quantization import SignOPORP, two_stage_search  # noqa: E402

K = 100
BITS = [64, 128, 256, 512]
FACTORS = [1, 4, 10]


def unit_rows(rng, n, d):
  x = rng.standard_normal((n, d)).astype(np.float32)
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def rss_bytes():
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
  return 0


def timed_pair(f1, f2, reps=15, budget_s=6.0):
  """Interleaved timings of f1 and f2 (ms): (median1, min1, median2, min2)."""
  f1()
  f2()
  t0 = time.perf_counter()
  f1()
  f2()
  per = time.perf_counter() - t0
  n = max(3, min(reps, int(budget_s / max(per, 1e-6))))
  a, b = [], []
  for _ in range(n):
    t0 = time.perf_counter()
    f1()
    a.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    f2()
    b.append(time.perf_counter() - t0)
  return (statistics.median(a) * 1e3, min(a) * 1e3, statistics.median(b) * 1e3, min(b) * 1e3)


def timed(fn, reps=10, budget_s=6.0):
  fn()
  t0 = time.perf_counter()
  fn()
  per = time.perf_counter() - t0
  times = []
  for _ in range(max(3, min(reps, int(budget_s / max(per, 1e-6))))):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times) * 1e3, min(times) * 1e3


def exact_top_k(queries, items, k):
  """Indices [B, k] of the exact top-k by dot product (float32 LinrMaskedTopK)."""
  b, n = len(queries), len(items)
  return ops.masked_top_k(queries, items, ops.hamming_ops.all_pass_mask(b, n), k).indices.numpy()


def recall_at(got, exact):
  return float(np.mean([len(set(g) & set(e)) / len(e) for g, e in zip(got, exact)]))


def rerank_np(queries, items, cand, k):
  """Exact top-k among candidate indices [B, K'] (numpy, for FAISS LSH)."""
  out = np.empty((len(queries), k), np.int64)
  for b in range(len(queries)):
    c = cand[b][cand[b] >= 0]
    s = items[c] @ queries[b]
    out[b] = c[np.argsort(-s, kind="stable")[:k]]
  return out


def recall_rows(name, items, queries, faiss):
  """Part (a) + (b) on one data set."""
  n, d = items.shape
  exact = exact_top_k(queries, items, K)
  rows = []
  lat_q = queries[:64]
  for m in BITS:
    enc = SignOPORP(d, m, seed=1)
    codes = enc(items)
    lsh = faiss.IndexLSH(d, m, True, False)  # random rotation to m bits, sign threshold
    lsh.train(items)
    lsh.add(items)
    for r in FACTORS:
      got = two_stage_search(queries, enc, codes, items, k=K, rerank_factor=r).indices.numpy()
      _, lsh_cand = lsh.search(queries, r * K)
      lsh_got = rerank_np(queries, items, lsh_cand, K)
      row = dict(data=name, n=n, d=d, m=m, r=r, recall_at_100=round(recall_at(got, exact), 4),
                 faiss_lsh_recall_at_100=round(recall_at(lsh_got, exact), 4),
                 code_bytes=m // 8, compression_vs_fp32=round(4 * d / (m / 8), 1),
                 compression_vs_fp16=round(2 * d / (m / 8), 1))
      if r in (1, 10):
        # Stage 1 only (top-(r k) by codes), B = 64: the op on encoded queries and
        # SignOPORP query encoding separately; FAISS IndexLSH.search (encodes too).
        lat_qt = tf.constant(lat_q)
        lat_codes = enc(lat_qt)
        op_fn = lambda: ops.hamming_top_k(lat_codes, codes, None, r * K).scores.numpy()  # noqa: E731
        lsh_fn = lambda: lsh.search(lat_q, r * K)  # noqa: E731
        op_ms, _, lsh_ms, _ = timed_pair(op_fn, lsh_fn, reps=7, budget_s=2.0)
        enc_ms, _ = timed(lambda: enc(lat_qt).numpy(), reps=5, budget_s=1.0)  # noqa: E731
        row.update(stage1_b64_op_ms=round(op_ms, 2), encode_b64_ms=round(enc_ms, 2),
                   stage1_b64_faiss_lsh_ms=round(lsh_ms, 2))
      rows.append(row)
      print(f"{name:10s} d={d:3d} m={m:3d} r={r:2d} recall@100={row['recall_at_100']:.3f} "
            f"faiss-LSH={row['faiss_lsh_recall_at_100']:.3f}"
            + (f"  stage1 B=64: op {row['stage1_b64_op_ms']:.1f} ms (+encode "
               f"{row['encode_b64_ms']:.1f}), LSH "
               f"{row['stage1_b64_faiss_lsh_ms']:.1f} ms" if r in (1, 10) else ""), flush=True)
  return rows


def pack_pass(passes):
  """bool [N] -> uint8 bitmap (FAISS IDSelectorBitmap) and int32 mask row."""
  n = len(passes)
  bitmap = np.packbits(passes, bitorder="little")
  row = np.zeros(-(-n // 32) * 4, np.uint8)
  row[:len(bitmap)] = bitmap
  return bitmap, row.view("<u4").view(np.int32)


def latency_rows(rng, n, faiss, words=4):
  """Part (c)."""
  codes = rng.integers(0, 2**32, (n, words), dtype=np.uint64).astype(np.uint32).view(np.int32)
  codes_tf = tf.constant(codes)
  index = faiss.IndexBinaryFlat(32 * words)
  index.add(codes.view(np.uint8))
  rows = []
  for batch in (1, 64):
    queries = rng.integers(0, 2**32, (batch, words), dtype=np.uint64).astype(
        np.uint32).view(np.int32)
    q_tf = tf.constant(queries)
    for rate in (1.0, 0.1, 0.01):
      passes = rng.random(n) < rate
      bitmap, mask_row = pack_pass(passes)
      mask = tf.constant(np.tile(mask_row, (batch, 1)))
      params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)))

      def op_fn():
        return ops.hamming_top_k(q_tf, codes_tf, mask, K)

      def faiss_fn():
        if rate == 1.0:
          return index.search(queries.view(np.uint8), K)
        return index.search(queries.view(np.uint8), K, params=params)

      # Same results: scores (matching bits = m - Hamming distance) exactly; indices
      # exactly above the k-th score (FAISS orders ties at the boundary differently).
      res = op_fn()
      dist, labels = faiss_fn()
      want = 32 * words - dist.astype(np.float32)
      got_s, got_i = res.scores.numpy(), res.indices.numpy()
      np.testing.assert_array_equal(got_s, want)
      for b in range(batch):
        above = want[b] > want[b, -1]
        assert set(got_i[b][above]) == set(labels[b][above]), (batch, rate, b)
        assert passes[got_i[b]].all()
      op_med, op_min, f_med, f_min = timed_pair(op_fn, faiss_fn)
      rows.append(dict(n=n, bits=32 * words, batch=batch, pass_rate=rate, k=K,
                       op_ms=round(op_med, 3), op_min_ms=round(op_min, 3),
                       faiss_binary_flat_ms=round(f_med, 3), faiss_min_ms=round(f_min, 3),
                       speedup=round(f_med / op_med, 2), speedup_min=round(f_min / op_min, 2),
                       equal_to_faiss=True))
      print(f"B={batch:2d} pass={rate:5.0%} op {op_med:8.2f} ms (min {op_min:7.2f})  faiss "
            f"{f_med:8.2f} ms (min {f_min:7.2f})  x{f_med / op_med:.2f}", flush=True)
  return rows


def scale_rows(rng, n, d=64, m=128, chunk=2_000_000):
  """Part (d): 100M x 128-bit codes built from random vectors in chunks."""
  enc = SignOPORP(d, m, seed=1)
  gc.collect()
  rss0 = rss_bytes()
  t0 = time.perf_counter()
  codes = np.empty((n, m // 32), np.int32)
  for start in range(0, n, chunk):
    stop = min(n, start + chunk)
    codes[start:stop] = enc(unit_rows(rng, stop - start, d)).numpy()
  build_s = time.perf_counter() - t0
  codes_tf = tf.constant(codes)  # the op's input tensor (a copy)
  del codes
  gc.collect()
  rss1 = rss_bytes()
  out = dict(n=n, d=d, m=m, build_s=round(build_s, 1), code_bytes_per_item=m // 8,
             code_store_gb=round(n * m / 8 / 1e9, 3), rss_delta_gb=round((rss1 - rss0) / 1e9, 3),
             rss_bytes_per_item=round((rss1 - rss0) / n, 2), latency=[])
  print(f"100M: built {n} x {m}-bit codes in {build_s:.1f} s; RSS +{(rss1 - rss0) / 1e9:.2f} GB "
        f"({(rss1 - rss0) / n:.2f} B/item)", flush=True)
  for batch in (1, 64):
    q_tf = enc(unit_rows(rng, batch, d))
    for rate in (1.0, 0.1):
      if rate == 1.0:
        mask = None
      else:
        _, row = pack_pass(rng.random(n) < rate)
        mask = tf.constant(np.tile(row, (batch, 1)))
      fn = lambda: ops.hamming_top_k(q_tf, codes_tf, mask, K)  # noqa: E731
      med, mn = timed(fn, reps=5 if batch == 1 else 3, budget_s=20)
      out["latency"].append(dict(batch=batch, pass_rate=rate, ms=round(med, 1),
                                 min_ms=round(mn, 1)))
      print(f"100M: B={batch:2d} pass={rate:4.0%} {med:9.1f} ms (min {mn:.1f})", flush=True)
      del mask
      gc.collect()
  return out


def plot(result, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  sets = list(dict.fromkeys(r["data"] for r in result["recall"]))
  fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4.2), sharey=True)
  axes = np.atleast_1d(axes)
  colors = {1: "tab:blue", 4: "tab:orange", 10: "tab:green"}
  for ax, name in zip(axes, sets):
    rows = [r for r in result["recall"] if r["data"] == name]
    d = rows[0]["d"]
    for r in FACTORS:
      pts = sorted((x["code_bytes"], x["recall_at_100"], x["faiss_lsh_recall_at_100"])
                   for x in rows if x["r"] == r)
      xs = [p[0] for p in pts]
      ax.plot(xs, [p[1] for p in pts], "o-", color=colors[r], label=f"Sign-OPORP r={r}")
      ax.plot(xs, [p[2] for p in pts], "x--", color=colors[r], alpha=0.7,
              label=f"FAISS IndexLSH r={r}")
    ax.axhline(0.95, color="grey", lw=0.8, ls=":")
    ax.axvline(2 * d / 16, color="grey", lw=0.8, ls=":")
    ax.text(2 * d / 16, 0.02, " 16x vs fp16", color="grey", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{b} B\n(m={8 * b})" for b in xs])
    ax.set_xlabel("code bytes per item")
    ax.set_title(f"{name} (N={rows[0]['n'] // 1000}k, d={d})")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("recall@100 vs exact (rerank top r*100)")
  axes[0].set_ylim(0, 1.02)
  axes[-1].legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  print("wrote", path)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
  parser.add_argument("--scale", action="store_true", help="also part (d), 100M items")
  parser.add_argument("--scale_n", type=int, default=100_000_000)
  parser.add_argument("--skip_recall", action="store_true")
  parser.add_argument("--skip_latency", action="store_true")
  parser.add_argument("--plot", action="store_true", help="write bench/quant_recall.png")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "quant.json"))
  args = parser.parse_args()
  import faiss  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  n_recall, n_latency = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
  result = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      result = json.load(f)
  t_start = time.time()
  if not args.skip_recall:
    import quant_demo_embeddings  # pylint: disable=import-outside-toplevel
    demo_items, demo_queries, demo_meta = quant_demo_embeddings.load_or_build()
    if args.quick:
      demo_items, demo_queries = demo_items[:n_recall], demo_queries[:100]
    recall = []
    for d in (128, 64):
      recall += recall_rows(f"random-{d}d", unit_rows(rng, n_recall, d),
                            unit_rows(rng, 200, d), faiss)
    recall += recall_rows("demo", demo_items, demo_queries, faiss)
    result.update(recall=recall, demo_embeddings=demo_meta)
  if not args.skip_latency:
    result["latency"] = latency_rows(rng, n_latency, faiss)
  if args.scale:
    result["scale"] = scale_rows(rng, args.scale_n)
  from linr_tf.ops import _library  # pylint: disable=import-outside-toplevel
  result["env"] = dict(machine=platform.machine(), cpus=os.cpu_count(), tf=tf.__version__,
                       faiss=faiss.__version__, faiss_threads=faiss.omp_get_max_threads(),
                       numpy=np.__version__, quick=args.quick,
                       linr_cpu_isa=os.environ.get("LINR_CPU_ISA", "(auto)"),
                       load_avg_at_end=os.getloadavg(), bench_s=round(time.time() - t_start))
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print("wrote", args.out)
  if args.plot and result.get("recall"):
    plot(result, os.path.join(HERE, "quant_recall.png"))


if __name__ == "__main__":
  main()
