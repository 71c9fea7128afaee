"""LinrMoLTopK inside TensorFlow on a GPU: 15.5M items x Q=4 x d=64 fp16,
P=4, B = 1 / 16, K = 100, every item passing and ~11 % passing; against the
HBM floor of its own item store (N Q d 2 bytes / 4.2e12 B/s) and against the
dot-product op (LinrMaskedTopK) over d = 256 fp16, the same bytes per item.
Not run yet (written on a machine without a GPU). On the GPU machine:

  bash tests/gpu/run.sh tests/gpu/mol_gpu_test.py      # correctness first
  python bench/mol_gpu.py --out bench/results/mol_gpu.json

Writes JSON {rows: [...], summary: {gpu_mol_ratio_to_floor (worst of B = 1 / 16,
all pass), gpu_latency_ratio_mol_vs_dot_same_bytes (worst)}}.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import ops  # noqa: E402
from linr_tf.ops.mol_ops import mol_top_k  # noqa: E402

HBM_BYTES_PER_S = 4.2e12


def pack(passes):
  """[B, N] bool -> int32 [B, ceil(N / 32)] pass bits."""
  b, n = passes.shape
  m = -(-n // 32)
  padded = np.zeros((b, m * 32), bool)
  padded[:, :n] = passes
  return np.packbits(padded.reshape(b, m, 32), axis=-1, bitorder="little").view(np.int32).reshape(b, m)


def timed(fn, reps):
  fn()  # warm-up (and trace)
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    out = fn()
    out.count.numpy()  # waits for the device
    times.append(1000 * (time.perf_counter() - t))
  return float(np.median(times)), float(np.percentile(times, 95))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--items", type=int, default=15_500_000)
  ap.add_argument("--reps", type=int, default=20)
  ap.add_argument("--k", type=int, default=100)
  ap.add_argument("--out", required=True)
  args = ap.parse_args()
  if not tf.config.list_physical_devices("GPU"):
    sys.exit("bench/mol_gpu.py: TensorFlow sees no GPU")
  n, p, q, d, k = args.items, 4, 4, 64, args.k
  rows = []
  with tf.device("/GPU:0"):
    # Chunks: one random op over > 2^31 elements is not safe.
    chunks = [tf.random.normal([min(1 << 20, n - s), q, d], dtype=tf.float16)
              for s in range(0, n, 1 << 20)]
    items = tf.Variable(tf.concat(chunks, 0), trainable=False)
    dots = tf.Variable(tf.reshape(items, [n, q * d]), trainable=False)
    del chunks
    weight = tf.constant(0.1 * np.random.default_rng(0).normal(size=(16, 16)), tf.float32)
    words = (n + 31) // 32
    for b in (1, 16):
      queries = tf.random.normal([b, p, d])
      bias = tf.random.normal([b, p * q])
      for rate in (1.0, 0.11):
        if rate == 1.0:
          mask = tf.fill([b, words], tf.constant(-1, tf.int32))
        else:
          mask = tf.constant(pack(np.random.default_rng(b).random((b, n)) < rate))

        mol_fn = tf.function(lambda: mol_top_k(queries, items, bias, weight, mask, k))
        flat_q = tf.reshape(queries, [b, p * d])
        dot_fn = tf.function(lambda: ops.masked_top_k(flat_q, dots, mask, k))
        mol_ms, mol_p95 = timed(mol_fn, args.reps)
        dot_ms, dot_p95 = timed(dot_fn, args.reps)
        floor_ms = n * q * d * 2 / HBM_BYTES_PER_S * 1000
        rows.append(dict(batch=b, pass_rate=rate, mol_ms=mol_ms, mol_p95_ms=mol_p95,
                         dot_same_bytes_ms=dot_ms, dot_same_bytes_p95_ms=dot_p95,
                         floor_ms=floor_ms, mol_ratio_to_floor=mol_ms / floor_ms,
                         mol_vs_dot_same_bytes=mol_ms / dot_ms))
        print(json.dumps(rows[-1]), flush=True)
  full = [r for r in rows if r["pass_rate"] == 1.0]
  summary = {"gpu_mol_ratio_to_floor": max(r["mol_ratio_to_floor"] for r in full),
             "gpu_latency_ratio_mol_vs_dot_same_bytes": max(r["mol_vs_dot_same_bytes"]
                                                            for r in full)}
  doc = {"setup": dict(items=n, p=p, q=q, d=d, k=k, dtype="float16",
                       device=tf.config.experimental.get_device_details(
                           tf.config.list_physical_devices("GPU")[0]).get("device_name")),
         "rows": rows, "summary": summary}
  with open(args.out, "w") as f:
    json.dump(doc, f, indent=1)
  print(json.dumps(summary))


if __name__ == "__main__":
  main()
