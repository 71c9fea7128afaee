"""Quantized KNN benchmark (issue 4): Sign-OPORP recall and Hamming top-k speed.

Part 1, recall@100 of two-stage search (top-(r k) by codes, exact rerank)
against exact dot-product search, N = 100k random unit vectors, B = 100
queries, m in {64, 128, 256, 512}, r in {1, 4, 10}, for d = 128 and d = 32.
Part 2, latency of linr_tf.ops.hamming_top_k vs FAISS IndexBinaryFlat on
N = 1M x 128-bit codes, k = 100, B in {1, 64}, pass rate 100% and 1% (FAISS
with IDSelectorBitmap). Same process, same codes; median wall ms.

  PYTHONPATH=. .venv/bin/python bench/quant_recall.py [--quick] [--out bench/results]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def timed(fn, reps=20, budget_s=3.0):
  fn()
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  times = []
  for _ in range(max(3, min(reps, int(budget_s / max(first, 1e-6))))):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times) * 1e3


def recall_table(rng, n, dims, batch):
  rows = []
  for d in dims:
    items = unit_rows(rng, n, d)
    queries = unit_rows(rng, batch, d)
    exact = ops.masked_top_k(queries, items, ops.hamming_ops.all_pass_mask(batch, n),
                             K).indices.numpy()
    for m in BITS:
      enc = SignOPORP(d, m, seed=1)
      codes = enc(items)
      for r in FACTORS:
        got = two_stage_search(queries, enc, codes, items, k=K, rerank_factor=r).indices.numpy()
        recall = float(np.mean([len(set(got[b]) & set(exact[b])) / K for b in range(batch)]))
        rows.append(dict(n=n, d=d, m=m, r=r, recall_at_100=round(recall, 4),
                         code_bytes=m // 8, compression_vs_fp32=round(4 * d / (m / 8), 1),
                         compression_vs_fp16=round(2 * d / (m / 8), 1)))
        print(f"d={d:4d} m={m:4d} r={r:2d} recall@100={recall:.3f}", flush=True)
  return rows


def latency_table(rng, n, words=4):
  import faiss  # pylint: disable=import-outside-toplevel
  codes = rng.integers(0, 2**32, (n, words), dtype=np.uint64).astype(np.uint32).view(np.int32)
  codes_tf = tf.constant(codes)
  index = faiss.IndexBinaryFlat(32 * words)
  index.add(codes.view(np.uint8))
  rows = []
  for batch in (1, 64):
    queries = rng.integers(0, 2**32, (batch, words), dtype=np.uint64).astype(
        np.uint32).view(np.int32)
    for rate in (1.0, 0.01):
      passes = rng.random(n) < rate
      bitmap = np.packbits(passes, bitorder="little")
      mask1 = np.zeros(-(-n // 32) * 4, np.uint8)
      mask1[:len(bitmap)] = bitmap
      mask = tf.constant(np.tile(mask1.view("<u4").view(np.int32), (batch, 1)))
      q_tf = tf.constant(queries)

      def op_fn():
        return ops.hamming_top_k(q_tf, codes_tf, mask, K)

      params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)))

      def faiss_fn():
        if rate == 1.0:
          return index.search(queries.view(np.uint8), K)
        return index.search(queries.view(np.uint8), K, params=params)

      # Same scores (matching bits = m - Hamming distance) from both.
      res = op_fn()
      dist, _ = faiss_fn()
      np.testing.assert_array_equal(res.scores.numpy(), 32 * words - dist.astype(np.float32))
      op_ms, faiss_ms = timed(op_fn), timed(faiss_fn)
      rows.append(dict(n=n, bits=32 * words, batch=batch, pass_rate=rate, k=K,
                       op_ms=round(op_ms, 3), faiss_binary_flat_ms=round(faiss_ms, 3),
                       speedup=round(faiss_ms / op_ms, 2)))
      print(f"B={batch:2d} pass={rate:5.0%} op {op_ms:8.2f} ms  faiss {faiss_ms:8.2f} ms  "
            f"x{faiss_ms / op_ms:.2f}", flush=True)
  return rows, faiss.__version__, faiss.omp_get_max_threads()


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  n_recall, n_latency = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
  recall = recall_table(rng, n_recall, [128, 32], 100)
  latency, faiss_version, faiss_threads = latency_table(rng, n_latency)
  result = dict(
      recall=recall, latency=latency,
      env=dict(machine=platform.machine(), cpus=os.cpu_count(), tf=tf.__version__,
               faiss=faiss_version, faiss_threads=faiss_threads, numpy=np.__version__,
               quick=args.quick))
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "quant.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  print("wrote", path)


if __name__ == "__main__":
  main()
