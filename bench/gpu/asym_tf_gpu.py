"""1-bit code scans inside TensorFlow on the GPU (issue 14's H200 latency):
symmetric LinrHammingTopK against asymmetric LinrAsymmetricHammingTopK with
Bq = 1 / 4 / 8 query bit planes, the same codes, mask and k.

    source .tfw/small/device_setup.sh && source bench/gpu/device_tf_setup.sh &&
    python3 bench/gpu/asym_tf_gpu.py --out $OUT [--sizes 1000000,100000000]

N x 128-bit codes (uint32 variables in GPU memory, bitcast to int32 in the
function, as ItemIndex does), k = 100, B = 1 and 64, pass 100 % and 12.5 % (a
random mask, precomputed and on the GPU); one tf.function per op, outputs
fetched to numpy, interleaved reps, p50 / p95 ms. Floor: one read of the codes
(N x 16 bytes) at 4.3 TB/s. Writes <out>/asym_tf_gpu.json with rows and a
summary: asym_vs_sym_scan_cost_ratio_gpu (Bq = 4 over symmetric, 1M, B = 64,
100 % pass) and its B = 1 twin.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import linr_tf  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

for _gpu in tf.config.list_physical_devices("GPU"):
  tf.config.experimental.set_memory_growth(_gpu, True)

from linr_tf import ops  # noqa: E402

BITS, K, BANDWIDTH = 128, 100, 4.3e12
WORDS = BITS // 32


def timed(fn, reps=30, warmup=3):
  for _ in range(warmup):
    fn()
  out = []
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    out.append((time.perf_counter() - t) * 1e3)
  return float(np.percentile(out, 50)), float(np.percentile(out, 95))


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--out", required=True)
  p.add_argument("--sizes", default="1000000,100000000")
  args = p.parse_args()
  os.makedirs(args.out, exist_ok=True)
  rows = []
  for n in [int(s) for s in args.sizes.split(",")]:
    with tf.device("/GPU:0"):
      codes = tf.Variable(tf.bitcast(tf.random.stateless_uniform(
          [n, WORDS], [n, 1], minval=None, maxval=None, dtype=tf.int32), tf.uint32),
                          trainable=False)
      factors = tf.Variable(tf.random.stateless_uniform([n], [n, 2], 0.5, 1.5), trainable=False)
    words = -(-n // 32)
    rng = np.random.default_rng(n)
    for b in (1, 64):
      q_codes = tf.constant(rng.integers(-2**31, 2**31, (b, WORDS), dtype=np.int64).astype(np.int32))
      for rate in (1.0, 0.125):
        # 100 %: every bit; 12.5 %: the AND of three random words per word.
        if rate == 1.0:
          mask_np = np.full((b, words), 0xFFFFFFFF, np.uint32)
        else:
          draw = lambda: rng.integers(0, 2**32, (b, words), dtype=np.uint32)
          mask_np = draw() & draw() & draw()
        if n % 32:
          mask_np[:, -1] &= np.uint32((1 << (n % 32)) - 1)   # no bits past N
        with tf.device("/GPU:0"):
          mask = tf.Variable(mask_np, trainable=False)   # uint32: stays in GPU memory

        @tf.function
        def sym(qc):
          return ops.hamming_top_k(qc, tf.bitcast(codes.read_value(), tf.int32),
                                   tf.bitcast(mask.read_value(), tf.int32), K)

        fns = {"hamming": (sym, (q_codes,))}
        for bq in (1, 4, 8):
          planes = tf.constant(rng.integers(-2**31, 2**31, (b, bq, WORDS),
                                            dtype=np.int64).astype(np.int32))
          scales = tf.constant(np.tile(np.array([[-1.0, 2.0 / (2**bq - 1)]], np.float32), (b, 1)))

          @tf.function
          def asym(pl, sc):
            return ops.asymmetric_hamming_top_k(pl, sc, tf.bitcast(codes.read_value(), tf.int32),
                                                factors, tf.bitcast(mask.read_value(), tf.int32), K)

          fns[f"asym_bq{bq}"] = (asym, (planes, scales))
        result = {}
        for name, (fn, inputs) in fns.items():
          call = lambda fn=fn, inputs=inputs: [t.numpy() for t in fn(*inputs)]
          result[name] = timed(call)
        floor = n * WORDS * 4 / BANDWIDTH * 1e3
        row = {"n": n, "batch": b, "pass_rate": rate, "k": K, "bits": BITS, "floor_ms": floor,
               **{f"{name}_p50_ms": v[0] for name, v in result.items()},
               **{f"{name}_p95_ms": v[1] for name, v in result.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
        del mask
    del codes, factors

  def ratio(b):
    r = next((r for r in rows if r["n"] == 1_000_000 and r["batch"] == b and r["pass_rate"] == 1.0),
             None)
    return r and r["asym_bq4_p50_ms"] / r["hamming_p50_ms"]

  summary = {"asym_vs_sym_scan_cost_ratio_gpu": ratio(64),
             "asym_vs_sym_scan_cost_ratio_gpu_b1": ratio(1)}
  with open(os.path.join(args.out, "asym_tf_gpu.json"), "w") as fh:
    gpus = tf.config.list_physical_devices("GPU")
    device = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
              if gpus else "CPU (no GPU visible)")
    json.dump({"device": device, "rows": rows, "summary": summary}, fh, indent=1)
  print("summary", json.dumps(summary), flush=True)


if __name__ == "__main__":
  main()
