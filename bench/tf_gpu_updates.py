"""Query latency on the GPU while live upserts stream in (LiNR: no measurable
p95 change at 600 upserts/s).

    source .tfw/small/device_setup.sh && python3 bench/tf_gpu_updates.py --out $OUT [--n 15500000]

An `ItemIndex` of N x 128 float16 items built under `tf.device("/GPU:0")`
(variables in HBM); one thread searches (B = 1, K = 2000, high-pass filter,
one tf.function) back to back for `--seconds`, while a writer upserts random
existing and new items at 0, 1k and 10k per second in batches every 50 ms
(`ItemIndex.upsert`: LinrWriteRows on the GPU). Rows: upserts_per_s (target
and achieved), p50_ms, p95_ms of the queries. Appends to <out>/tf_gpu_updates.json.
"""

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

for _gpu in tf.config.list_physical_devices("GPU"):
  tf.config.experimental.set_memory_growth(_gpu, True)

from linr_tf.attributes import AttributeSchema  # noqa: E402
from linr_tf.index import ItemIndex  # noqa: E402

DIM, K = 128, 2000


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--out", required=True)
  p.add_argument("--n", type=int, default=15_500_000)
  p.add_argument("--seconds", type=float, default=8.0)
  p.add_argument("--rates", default="0,1000,10000")
  args = p.parse_args()
  rng = np.random.default_rng(0)
  geo = np.array([f"g{i}" for i in range(9)])
  company = np.array(["c0", "c1"])
  schema = AttributeSchema.from_columns({"geo": geo, "company": company})
  n = args.n
  cols = {"geo": geo[rng.integers(0, 9, n)], "company": company[(rng.random(n) < 0.05).astype(int)]}
  t0 = time.perf_counter()
  bits = schema.encode(cols)
  with tf.device("/GPU:0"):
    index = ItemIndex(DIM, schema.keys, capacity=0, vectors="float16")
    index.assign(np.char.add("i", np.arange(n).astype(str)).astype(object),
                 rng.standard_normal((n, DIM), dtype=np.float32), bits)
  print(f"built {n} items in {time.perf_counter() - t0:.1f} s; vectors on {index.vectors.device}",
        flush=True)
  search = tf.function(lambda q, f: index(q, f, K))
  q = tf.constant(rng.normal(size=(1, DIM)).astype(np.float32))
  f = tf.constant(["geo = g1 AND company != c1"])
  index.writer_lock.resource_handle   # create the mutex eagerly, outside the tf.function
  # One trace for every batch size (a per-shape retrace inside the timed window
  # is what starved the 1k/s cell of run 37), warmed before any timing.
  upsert = tf.function(lambda ids, v, e, a: index.upsert(ids, v, e, a), input_signature=[
      tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int64),
      tf.TensorSpec([None, DIM], tf.float32), tf.TensorSpec([None, bits.shape[1]], tf.int32)])
  upsert(tf.constant(["i0"]), tf.constant([1], tf.int64), tf.zeros([1, DIM]),
         tf.constant(bits[:1])).applied.numpy()
  for _ in range(5):
    [t.numpy() for t in search(q, f)]
  rows = []
  version = 1
  for rate in [int(r) for r in args.rates.split(",")]:
    stop = threading.Event()
    written = [0]

    def writer():
      nonlocal version
      period = 0.05
      per_batch = max(1, int(rate * period))
      wrng = np.random.default_rng(rate)
      while not stop.is_set():
        t = time.perf_counter()
        ids = np.char.add("i", wrng.choice(n + 100_000, per_batch, replace=False).astype(str))
        emb = wrng.standard_normal((per_batch, DIM), dtype=np.float32)
        attrs = bits[wrng.integers(0, n, per_batch)]
        version += 1
        result = upsert(tf.constant(ids), tf.fill([per_batch], tf.constant(version, tf.int64)),
                        tf.constant(emb), tf.constant(attrs))
        result.applied.numpy()
        written[0] += per_batch
        time.sleep(max(0.0, period - (time.perf_counter() - t)))

    th = threading.Thread(target=writer, daemon=True) if rate else None
    if th:
      th.start()
      time.sleep(0.5)
    times = []
    w0, t_start = written[0], time.perf_counter()
    while time.perf_counter() - t_start < args.seconds:
      t = time.perf_counter()
      [x.numpy() for x in search(q, f)]
      times.append((time.perf_counter() - t) * 1e3)
    achieved = (written[0] - w0) / (time.perf_counter() - t_start)
    stop.set()
    if th:
      th.join()
    rows.append({"upserts_per_s": rate, "achieved_upserts_per_s": achieved,
                 "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                 "queries": len(times), "n": n})
    print(json.dumps(rows[-1]), flush=True)
  base = rows[0]["p95_ms"]
  summary = {"p95_regression_1k_upserts": next(
      (r["p95_ms"] / base - 1 for r in rows if r["upserts_per_s"] == 1000), None)}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "tf_gpu_updates.json"), "w") as fh:
    json.dump({"rows": rows, "summary": summary}, fh, indent=1)
  print("summary", json.dumps(summary), flush=True)


if __name__ == "__main__":
  main()
