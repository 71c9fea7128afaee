"""CPU benchmark of LinrHammingTopK for large k: the counting path
(custom_ops/quantization/hamming_large_k_cpu.h) against the candidate-buffer
path on the same data, which sets the CPU crossover (hamming_large_k.h), plus
a numpy anchor (XOR + bitwise_count + argpartition + stable sort of the kept).

N x 64-bit codes (Wc = 2), B = 1, pass 100 % and 10 % (mask precomputed),
k from 100 up to 1M; each cell is the median of `--reps` calls of the op
(outputs fetched). Floor = (codes + mask) bytes / read bandwidth measured in
this run (the faster of tf.reduce_sum over the codes as float32 and numpy's
XOR-reduce over them as uint64).
Both paths' outputs are checked equal in every cell.

  PYTHONPATH=. nice -n 10 .venv/bin/python bench/hamming_large_k_cpu.py \
      [--n 4000000] [--reps 5] [--out bench/results/hamming_large_k_cpu.json]
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import ops  # noqa: E402

SELECT_ENV = "LINR_HAMMING_TOPK_SELECT"


def cpu_model():
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def median_ms(fn, reps):
  fn()
  ts = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn()
    ts.append((time.perf_counter() - t0) * 1e3)
  return float(np.median(ts))


def numpy_top_k(query, codes, passes, k):
  """Scores desc, ties by smaller index: threshold by np.partition, then the
  items above it and the first (by index) at it, sorted stably."""
  x = codes.view(np.uint64)[:, 0] ^ query.view(np.uint64)[0]
  s = 64 - np.bitwise_count(x).astype(np.int16)
  s = np.where(passes, s, np.int16(-1))
  kk = min(k, int(passes.sum()))
  if kk == 0:
    return s[:0], np.zeros(0, np.int64)
  t = -np.partition(-s, kk - 1)[kk - 1]
  above = np.flatnonzero(s > t)
  cand = np.concatenate([above, np.flatnonzero(s == t)[:kk - above.size]])
  cand.sort()
  order = np.argsort(-s[cand], kind="stable")
  return s[cand[order]], cand[order]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--n", type=int, default=4_000_000)
  ap.add_argument("--reps", type=int, default=5)
  ap.add_argument("--ks", type=int, nargs="+",
                  default=[100, 1000, 4096, 16384, 65536, 400_000, 1_000_000])
  ap.add_argument("--out", default="bench/results/hamming_large_k_cpu.json")
  args = ap.parse_args()
  rng = np.random.default_rng(0)
  n = args.n
  codes = rng.integers(0, 2**32, (n, 2), dtype=np.uint64).astype(np.uint32).view(np.int32)
  query = rng.integers(0, 2**32, (1, 2), dtype=np.uint64).astype(np.uint32).view(np.int32)
  codes_t, query_t = tf.constant(codes), tf.constant(query)
  as_float = tf.constant(codes.view(np.float32).reshape(-1))
  as_u64 = codes.view(np.uint64).reshape(-1)
  read_ms = min(median_ms(lambda: tf.reduce_sum(as_float).numpy(), 10),
                median_ms(lambda: np.bitwise_xor.reduce(as_u64), 10))
  read_bw = codes.nbytes / (read_ms * 1e-3)
  print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; read bandwidth {read_bw/1e9:.1f} GB/s")
  rows = []
  for rate in (1.0, 0.1):
    m = (n + 31) // 32
    bits = rng.random(m * 32) < rate
    passes = bits[:n]
    mask = np.packbits(bits.reshape(1, m, 4, 8), axis=-1,
                       bitorder="little").reshape(1, m * 4).view("<u4").view(np.int32)
    mask_t = tf.constant(mask)
    floor_ms = (codes.nbytes + mask.nbytes) / read_bw * 1e3
    for k in args.ks:
      out, ms = {}, {}
      for path in ("buffer", "counting"):
        os.environ[SELECT_ENV] = path
        run = lambda: [t.numpy() for t in ops.hamming_top_k(query_t, codes_t, mask_t, k)]
        out[path] = run()
        ms[path] = median_ms(run, args.reps)
      os.environ.pop(SELECT_ENV, None)
      equal = all(np.array_equal(a, b) for a, b in zip(out["buffer"], out["counting"]))
      np_ms = median_ms(lambda: numpy_top_k(query, codes, passes, k), max(1, args.reps // 2))
      sv, iv = numpy_top_k(query, codes, passes, k)
      c = int(out["counting"][2][0])
      numpy_equal = bool(np.array_equal(out["counting"][1][0, :c], iv)
                         and np.array_equal(out["counting"][0][0, :c], sv.astype(np.float32)))
      row = dict(N=n, bits=64, B=1, pass_rate=rate, k=k, buffer_ms=ms["buffer"],
                 counting_ms=ms["counting"], numpy_ms=np_ms, floor_ms=floor_ms,
                 paths_equal=bool(equal), numpy_equal=numpy_equal)
      rows.append(row)
      print(f"pass={rate*100:g}% k={k:>8}: buffer {ms['buffer']:8.1f} ms | counting "
            f"{ms['counting']:7.1f} ms | numpy {np_ms:7.1f} ms | floor {floor_ms:.1f} ms | "
            f"equal {equal} / numpy {numpy_equal}", flush=True)

  def crossover(rate):
    """Smallest measured k from which counting is faster at every larger k."""
    cells = [r for r in rows if r["pass_rate"] == rate]
    best = None
    for r in reversed(cells):
      if r["counting_ms"] < r["buffer_ms"]:
        best = r["k"]
      else:
        break
    return best

  res = dict(cpu_model=cpu_model(), cores=os.cpu_count(), read_bw=read_bw, rows=rows,
             summary=dict(cpu_model=cpu_model(), crossover_k_full=crossover(1.0),
                          crossover_k_10pct=crossover(0.1),
                          all_paths_equal=all(r["paths_equal"] and r["numpy_equal"]
                                              for r in rows)))
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(res, f, indent=1)
  print(json.dumps(res["summary"], indent=1))


if __name__ == "__main__":
  main()
