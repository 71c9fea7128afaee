"""CPU benchmark of attribute-filtered exact top-k (issue 3).

N = 1M items x 128 dims, one attribute word per item; every query of a batch
uses the same filter `kAny(bit r) AND kAny(live)` where bit r is set on a
fraction `pass` of the items. Timed in one process:
  op/auto, op/mask, op/prefilter  linr_tf.ops.filtered_top_k end to end
                                  (filter_mask from item bits + top-k), items
                                  stored as fp32 (and bf16 / fp16 for auto);
  numpy           X @ Q.T, non-passing -> -inf, argpartition + sort;
  tf_where        tf.where(mask, Q X^T, -inf) + tf.math.top_k;
  tf_boolean_mask tf.boolean_mask(X) + matmul + top_k + gather of ids;
  tfrs            tfrs.layers.factorized_top_k.BruteForce re-indexed with the
                  boolean-masked candidates (how a TFRS user filters);
  faiss           IndexFlatIP.search with IDSelectorBitmap in SearchParameters.
Anchors get the pass mask precomputed (untimed); the op is timed from the
attribute words. Memory floor = (N * 4 bytes of attribute words + passing
items * d * itemsize) / read bandwidth (measured in the same run).

  PYTHONPATH=. .venv/bin/python bench/cpu_prefilter.py [--quick] [--out bench/results]
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

N, D = 1_000_000, 128
RATES = [1.0, 0.1, 0.01, 0.001]
BATCHES = [1, 64]
KS = [100, 2000]
ANY, AND = 1, 3
ANCHORS = ["numpy", "tf_where", "tf_boolean_mask", "tfrs", "faiss"]


_FLUSH = np.ones(96 << 20 >> 3)  # 96 MB > L3 (32 MB here)


def flush_caches():
  """Evicts the caches (untimed), so no method reads another's warm rows."""
  _FLUSH[::8].sum()  # touches every cache line


def timed(fn, reps, budget_s=3.0):
  """Median wall ms of fn() over up to `reps` runs (after one warm-up), fewer
  when a run is slow; caches are flushed before every run."""
  flush_caches()
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  reps = max(1, min(reps, int(budget_s / max(first, 1e-6))))
  times = []
  for _ in range(reps):
    flush_caches()
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times) * 1e3, len(times)


def read_bandwidth(x):
  """Read bandwidth (bytes/s): best of multi-threaded reads of x."""
  xt = tf.constant(x)
  best = 0.0
  q = np.ones(x.shape[1], np.float32)
  for fn in (lambda: x @ q, lambda: tf.reduce_sum(xt, axis=1).numpy()):
    fn()
    for _ in range(5):
      t0 = time.perf_counter()
      fn()
      best = max(best, x.nbytes / (time.perf_counter() - t0))
  return best


def make_data(rng):
  items = rng.standard_normal((N, D)).astype(np.float32)
  bits = np.ones(N, np.int64)  # bit 0: live
  for r, rate in enumerate(RATES):
    bits |= (rng.random(N) < rate).astype(np.int64) << (r + 1)
  return items, bits.astype(np.int32).reshape(N, 1)


def program_for(rate_index, batch):
  rows = [[ANY, 0, 1 << (rate_index + 1)], [ANY, 0, 1], [AND, 0, 0]]
  return np.array([rows] * batch, np.int32)


def anchors(items, items_tf, ids_tf, passes, queries, k, faiss_index, tfrs):
  """name -> zero-argument callable returning (scores, ids)."""
  q_tf = tf.constant(queries)
  mask_tf = tf.constant(passes)
  k_eff = int(min(k, passes.sum()))
  neg_inf = np.float32(-np.inf)

  def numpy_fn():
    s = items @ queries.T                       # [N, B]
    s[~passes] = neg_inf
    part = np.argpartition(-s, k - 1, axis=0)[:k] if k < N else np.arange(N)[:, None]
    top = np.take_along_axis(s, part, axis=0)
    order = np.argsort(-top, axis=0, kind="stable")
    return np.take_along_axis(top, order, 0), np.take_along_axis(part, order, 0)

  def tf_where_fn():
    s = tf.matmul(q_tf, items_tf, transpose_b=True)
    s = tf.where(mask_tf[None, :], s, neg_inf)
    return tuple(t.numpy() for t in tf.math.top_k(s, k))

  def tf_boolean_mask_fn():
    x = tf.boolean_mask(items_tf, mask_tf)
    ids = tf.boolean_mask(ids_tf, mask_tf)
    s = tf.matmul(q_tf, x, transpose_b=True)
    v, i = tf.math.top_k(s, k_eff)
    return v.numpy(), tf.gather(ids, i).numpy()

  def tfrs_fn():
    index = tfrs.layers.factorized_top_k.BruteForce(k=k_eff)
    index.index(tf.boolean_mask(items_tf, mask_tf), tf.boolean_mask(ids_tf, mask_tf))
    v, i = index(q_tf)
    return v.numpy(), i.numpy()

  def faiss_fn():
    import faiss  # pylint: disable=import-outside-toplevel
    bitmap = np.packbits(passes, bitorder="little")
    params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(N, faiss.swig_ptr(bitmap)))
    return faiss_index.search(queries, k, params=params)

  fns = {"numpy": numpy_fn, "tf_where": tf_where_fn, "tf_boolean_mask": tf_boolean_mask_fn,
         "faiss": faiss_fn}
  if tfrs is not None and k_eff > 0:
    fns["tfrs"] = tfrs_fn
  return fns


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
  parser.add_argument("--png", default=os.path.join(os.path.dirname(__file__),
                                                    "cpu_prefilter.png"))
  parser.add_argument("--reps", type=int, default=7)
  parser.add_argument("--quick", action="store_true", help="skip the anchors")
  parser.add_argument("--rates", type=float, nargs="*", default=RATES,
                      help="pass rates (e.g. 0.5 0.2 to tune the auto threshold)")
  parser.add_argument("--batches", type=int, nargs="*", default=BATCHES)
  parser.add_argument("--ks", type=int, nargs="*", default=KS)
  args = parser.parse_args()
  RATES[:] = args.rates
  BATCHES[:] = args.batches
  KS[:] = args.ks

  import faiss  # pylint: disable=import-outside-toplevel
  try:
    import tensorflow_recommenders as tfrs  # pylint: disable=import-outside-toplevel
  except ImportError:
    tfrs = None

  rng = np.random.default_rng(0)
  items, item_bits = make_data(rng)
  bandwidth = read_bandwidth(items)
  stored = {"fp32": tf.constant(items)}
  stored["bf16"] = tf.cast(stored["fp32"], tf.bfloat16)
  stored["fp16"] = tf.cast(stored["fp32"], tf.float16)
  itemsize = {"fp32": 4, "bf16": 2, "fp16": 2}
  ids_tf = tf.range(N, dtype=tf.int32)
  bits_tf = tf.constant(item_bits)
  faiss_index = faiss.IndexFlatIP(D)
  faiss_index.add(items)
  print(f"read bandwidth {bandwidth / 1e9:.1f} GB/s; threads: tf intra-op "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}, "
        f"faiss {faiss.omp_get_max_threads()}", flush=True)

  cells = []
  for r, rate in enumerate(RATES):
    passes = ((item_bits[:, 0] >> (r + 1)) & 1).astype(bool)
    passing = int(passes.sum())
    for batch in BATCHES:
      queries = rng.standard_normal((batch, D)).astype(np.float32)
      q_tf = tf.constant(queries)
      program = tf.constant(program_for(r, batch))
      for k in KS:
        cell = dict(pass_rate=rate, passing=passing, B=batch, K=k, ms={}, reps={},
                    load_before=os.getloadavg()[0])
        ref = None
        for storage in ("fp32", "bf16", "fp16"):
          strategies = ("auto", "mask", "prefilter") if storage == "fp32" else ("auto",)
          for strategy in strategies:
            def op_fn(strategy=strategy, storage=storage):
              out = ops.filtered_top_k(q_tf, stored[storage], bits_tf, program, k,
                                       strategy=strategy)
              return out.scores.numpy(), out.indices.numpy()
            name = f"op/{strategy}" + ("" if storage == "fp32" else f"/{storage}")
            cell["ms"][name], cell["reps"][name] = timed(op_fn, args.reps)
            if storage == "fp32" and strategy == "auto":
              ref = op_fn()
        if not args.quick:
          for name, fn in anchors(items, stored["fp32"], ids_tf, passes, queries, k,
                                  faiss_index, tfrs).items():
            cell["ms"][name], cell["reps"][name] = timed(fn, 3 if batch > 1 else 5)
            # Sanity: the best score agrees with the op's.
            top = np.asarray(fn()[0])
            top = top[:, 0] if top.shape[0] == batch else top[0]
            if passing:
              np.testing.assert_allclose(np.max(top), np.max(ref[0][:, 0]), rtol=1e-3,
                                         atol=1e-3)
        floor = {s: (N * 4 + passing * D * itemsize[s]) / bandwidth * 1e3 for s in itemsize}
        cell["floor_ms"] = floor
        cell["load_after"] = os.getloadavg()[0]
        anchor_ms = {n: cell["ms"][n] for n in ANCHORS if n in cell["ms"]}
        if anchor_ms:
          best = min(anchor_ms, key=anchor_ms.get)
          cell["best_anchor"] = best
          cell["speedup_vs_best_anchor"] = anchor_ms[best] / cell["ms"]["op/auto"]
        cell["op_over_floor"] = {
            s: cell["ms"]["op/auto" + ("" if s == "fp32" else f"/{s}")] / floor[s]
            for s in itemsize}
        cells.append(cell)
        print_cell(cell)

  os.makedirs(args.out, exist_ok=True)
  meta = dict(N=N, d=D, bandwidth_GBps=bandwidth / 1e9, cpu=cpu_model(), nproc=os.cpu_count(),
              python=platform.python_version(), tensorflow=tf.__version__,
              faiss=faiss.__version__, numpy=np.__version__,
              prefilter_max_pass_rate=ops.PREFILTER_MAX_PASS_RATE)
  with open(os.path.join(args.out, "cpu_prefilter.json"), "w") as f:
    json.dump(dict(meta=meta, cells=cells), f, indent=1)
  plot(cells, args.png)


def cpu_model():
  with open("/proc/cpuinfo") as f:
    for line in f:
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  return platform.processor()


def print_cell(cell):
  ms = cell["ms"]
  parts = [f"pass={cell['pass_rate']:<6g} B={cell['B']:<3} K={cell['K']:<5}"]
  parts += [f"{n}={v:.2f}" for n, v in ms.items()]
  parts.append(f"floor={cell['floor_ms']['fp32']:.2f}/{cell['floor_ms']['bf16']:.2f}")
  if "speedup_vs_best_anchor" in cell:
    parts.append(f"x{cell['speedup_vs_best_anchor']:.2f} vs {cell['best_anchor']}")
  parts.append(f"load {cell['load_before']:.1f}->{cell['load_after']:.1f}")
  print("  ".join(parts), flush=True)


def plot(cells, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(len(BATCHES), len(KS), figsize=(12, 8), squeeze=False)
  for bi, batch in enumerate(BATCHES):
    for ki, k in enumerate(KS):
      ax = axes[bi][ki]
      sel = [c for c in cells if c["B"] == batch and c["K"] == k]
      rates = [c["pass_rate"] * 100 for c in sel]
      names = [n for n in sel[0]["ms"]]
      for name in names:
        style = "-o" if name.startswith("op/") else "--x"
        ax.plot(rates, [c["ms"].get(name, np.nan) for c in sel], style, label=name, ms=4)
      ax.plot(rates, [c["floor_ms"]["fp32"] for c in sel], "k:", label="floor fp32")
      ax.plot(rates, [c["floor_ms"]["bf16"] for c in sel], "k-.", label="floor bf16")
      ax.set_xscale("log")
      ax.set_yscale("log")
      ax.set_xlabel("pass rate (%)")
      ax.set_ylabel("median ms")
      ax.set_title(f"B={batch}, K={k}, N=1M x 128")
      ax.grid(True, which="both", alpha=0.3)
  axes[0][0].legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


if __name__ == "__main__":
  main()
