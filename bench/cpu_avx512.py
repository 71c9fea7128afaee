"""CPU grid of issue 13: the op on each instruction-set path vs floor and anchors.

N = 1M items x 128 dims stored as fp32 / fp16 / bf16, one attribute word per
item; every query of a batch uses the filter `kAny(bit r) AND kAny(live)`
where bit r is set on a fraction `pass` of the items (as bench/cpu_prefilter.py).
Per cell (dtype, B, pass rate, K = 100), timed in one process:
  op/<isa>       linr_tf.ops.filtered_top_k end to end (filter mask from the
                 attribute words + top-k, strategy auto), $LINR_CPU_ISA forced
                 to each path this CPU has (avx512, avx2; portable with
                 --portable);
  numpy          X @ Q.T, non-passing -> -inf, argpartition + sort (fp32);
  tf_where       tf.where(mask, Q X^T, -inf) + tf.math.top_k (fp32);
  tf_boolean_mask  tf.boolean_mask(X) + matmul + top_k + gather (fp32);
  tfrs           tfrs BruteForce re-indexed with the masked candidates (fp32;
                 only where tensorflow_recommenders imports);
  faiss          IndexFlatIP + IDSelectorBitmap (fp32), and for fp16 / bf16
                 cells faiss_sq: IndexScalarQuantizer(QT_fp16 / QT_bf16,
                 inner product) + IDSelectorBitmap (only where faiss imports).
Anchors get the pass mask precomputed (untimed). The best anchor of a 16-bit
cell is the best of its faiss_sq and the fp32 anchors of the same (B, pass).
Hamming rows: 8M x 128-bit codes (LinrHammingTopK, mask precomputed) against
FAISS IndexBinaryFlat + IDSelectorBitmap, and at B = 1 numpy (XOR +
bitwise_count) and TF (bitwise_xor + PopulationCount + top_k).

Memory floor of a cell = bytes the op must read / read bandwidth measured in
this run (best of numpy X @ q and tf.reduce_sum over the fp32 items, both
multi-threaded): top-k: N * 4 bytes of attribute words + passing rows *
d * itemsize; Hamming: mask words + the 64-byte lines of codes holding a
passing item. A cell "allows 2x" when its best anchor is >= 2x its floor.

  PYTHONPATH=. nice -n 10 .venv/bin/python bench/cpu_avx512.py [--out PATH]
      [--quick] [--batches 1 16 64] [--rates 1 0.1 0.01 0.001]
On the GPU machine's host (Sapphire Rapids): source bench/gpu/device_tf_setup.sh
first (it exports $LINR_TF_OPS_LIBRARY), then the same command; the default
--out is bench/results/cpu_avx512.json on an AVX-512 CPU, else
bench/results/cpu_avx2.json.
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
# A CPU benchmark: on the GPU machine's host TF must not place the ops on the GPU.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import ops  # noqa: E402

N, D, K = 1_000_000, 128, 100
HAMMING_N, HAMMING_WORDS = 8_000_000, 4
ANY, AND = 1, 3
FP32_ANCHORS = ["numpy", "tf_where", "tf_boolean_mask", "tfrs", "faiss"]
ITEMSIZE = {"fp32": 4, "fp16": 2, "bf16": 2}
TF_DTYPE = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}
AVX512_FLAGS = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}
AVX2_FLAGS = {"avx2", "fma", "f16c", "bmi2", "popcnt"}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def cpu_info():
  model, flags = platform.processor(), set()
  with open("/proc/cpuinfo", encoding="utf-8") as f:
    for line in f:
      if line.startswith("model name"):
        model = line.split(":", 1)[1].strip()
      elif line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
      if model and flags:
        break
  return model, flags


_FLUSH = np.ones(96 << 20 >> 3)  # 96 MB, more than the L3 of these machines


def flush_caches():
  _FLUSH[::8].sum()


def timed(fn, reps, budget_s):
  """Median wall ms of fn() (after one warm-up), caches flushed before each run."""
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
  return statistics.median(times) * 1e3


def read_bandwidth(x, xt):
  """Best read bandwidth (bytes/s) of multi-threaded full reads of x."""
  q = np.ones(x.shape[1], np.float32)
  best = 0.0
  for fn in (lambda: x @ q, lambda: tf.reduce_sum(xt, axis=1).numpy()):
    fn()
    for _ in range(5):
      t0 = time.perf_counter()
      fn()
      best = max(best, x.nbytes / (time.perf_counter() - t0))
  return best


def with_isa(isa, fn):
  def run():
    old = os.environ.get("LINR_CPU_ISA")
    os.environ["LINR_CPU_ISA"] = isa
    try:
      return fn()
    finally:
      if old is None:
        del os.environ["LINR_CPU_ISA"]
      else:
        os.environ["LINR_CPU_ISA"] = old
  return run


def fp32_anchors(items, items_tf, ids_tf, passes, queries, k, faiss_index, tfrs):
  q_tf = tf.constant(queries)
  mask_tf = tf.constant(passes)
  k_eff = int(min(k, passes.sum()))
  neg_inf = np.float32(-np.inf)

  def numpy_fn():
    s = items @ queries.T
    s[~passes] = neg_inf
    part = np.argpartition(-s, k - 1, axis=0)[:k]
    top = np.take_along_axis(s, part, axis=0)
    order = np.argsort(-top, axis=0, kind="stable")
    return np.take_along_axis(top, order, 0).T

  def tf_where_fn():
    s = tf.matmul(q_tf, items_tf, transpose_b=True)
    s = tf.where(mask_tf[None, :], s, neg_inf)
    return tf.math.top_k(s, k)[0].numpy()

  def tf_boolean_mask_fn():
    x = tf.boolean_mask(items_tf, mask_tf)
    ids = tf.boolean_mask(ids_tf, mask_tf)
    v, i = tf.math.top_k(tf.matmul(q_tf, x, transpose_b=True), k_eff)
    tf.gather(ids, i).numpy()
    return v.numpy()

  def tfrs_fn():
    index = tfrs.layers.factorized_top_k.BruteForce(k=k_eff)
    index.index(tf.boolean_mask(items_tf, mask_tf), tf.boolean_mask(ids_tf, mask_tf))
    return index(q_tf)[0].numpy()

  fns = {"numpy": numpy_fn, "tf_where": tf_where_fn, "tf_boolean_mask": tf_boolean_mask_fn}
  if tfrs is not None and k_eff > 0:
    fns["tfrs"] = tfrs_fn
  if faiss_index is not None:
    fns["faiss"] = faiss_search(faiss_index, passes, queries, k)
  return fns


def faiss_search(index, passes, queries, k):
  import faiss  # pylint: disable=import-outside-toplevel
  bitmap = np.packbits(passes, bitorder="little")

  def fn():
    params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(passes),
                                                               faiss.swig_ptr(bitmap)))
    return index.search(queries, k, params=params)[0]
  return fn


def program_for(bit, batch):
  return np.array([[[ANY, 0, 1 << bit], [ANY, 0, 1], [AND, 0, 0]]] * batch, np.int32)


def pack_mask(passes):
  n = passes.shape[-1]
  m = -(-n // 32)
  padded = np.zeros(m * 32, bool)
  padded[:n] = passes
  return np.packbits(padded.reshape(m, 4, 8), axis=-1,
                     bitorder="little").reshape(m * 4).view("<u4").view(np.int32)


def summarize_cell(cell, anchor_names):
  ops_ms = {n: v for n, v in cell["ms"].items() if n.startswith("op/")}
  best_op = min(ops_ms, key=ops_ms.get)
  cell["op_best"] = best_op
  cell["op_ratio_to_floor"] = ops_ms[best_op] / cell["floor_ms"]
  anchor_ms = {n: cell["ms"][n] for n in anchor_names if n in cell["ms"]}
  if "fp32_anchor_ms" in cell:
    anchor_ms.update({f"fp32:{n}": v for n, v in cell["fp32_anchor_ms"].items()})
  if anchor_ms:
    best = min(anchor_ms, key=anchor_ms.get)
    cell["best_anchor"] = best
    cell["best_anchor_ms"] = anchor_ms[best]
    cell["speedup_vs_best_anchor"] = anchor_ms[best] / ops_ms[best_op]
    cell["floor_allows_2x"] = bool(anchor_ms[best] >= 2 * cell["floor_ms"])
  return cell


def print_cell(cell):
  parts = [f"{cell['kind']:<8} B={cell['B']:<3} pass={cell['pass_rate']:<6g}"]
  parts += [f"{n}={v:.2f}" for n, v in cell["ms"].items()]
  parts.append(f"floor={cell['floor_ms']:.2f} (x{cell['op_ratio_to_floor']:.2f})")
  if "speedup_vs_best_anchor" in cell:
    parts.append(f"x{cell['speedup_vs_best_anchor']:.2f} vs {cell['best_anchor']}"
                 f"{'' if cell['floor_allows_2x'] else ' (floor < 2x)'}")
  print("  ".join(parts), flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=None)
  parser.add_argument("--batches", type=int, nargs="*", default=[1, 16, 64])
  parser.add_argument("--rates", type=float, nargs="*", default=[1.0, 0.1, 0.01, 0.001])
  parser.add_argument("--dtypes", nargs="*", default=["fp32", "fp16", "bf16"])
  parser.add_argument("--isas", nargs="*", default=None,
                      help="paths to force (default: avx512 and avx2, those the CPU has)")
  parser.add_argument("--portable", action="store_true", help="also time the portable path")
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--budget", type=float, default=2.0, help="seconds per method and cell")
  parser.add_argument("--no-hamming", action="store_true")
  parser.add_argument("--quick", action="store_true", help="no anchors")
  args = parser.parse_args()

  model, flags = cpu_info()
  has_avx512 = AVX512_FLAGS <= flags
  isas = args.isas or ([i for i, ok in (("avx512", has_avx512), ("avx2", AVX2_FLAGS <= flags))
                        if ok])
  if args.portable:
    isas.append("portable")
  out = args.out or os.path.join(RESULTS, "cpu_avx512.json" if has_avx512 else "cpu_avx2.json")
  try:
    import faiss  # pylint: disable=import-outside-toplevel
  except ImportError:
    faiss = None
  try:
    import tensorflow_recommenders as tfrs  # pylint: disable=import-outside-toplevel
  except ImportError:
    tfrs = None
  notes = []
  if faiss is None:
    notes.append("faiss not importable here: no FAISS anchors")
  if tfrs is None:
    notes.append("tensorflow_recommenders not importable here: no TFRS anchor")

  rng = np.random.default_rng(0)
  items = rng.standard_normal((N, D)).astype(np.float32)
  bits = np.ones(N, np.int64)
  for r, rate in enumerate(args.rates):
    bits |= (rng.random(N) < rate).astype(np.int64) << (r + 1)
  item_bits = tf.constant(bits.astype(np.int32).reshape(N, 1))
  stored = {"fp32": tf.constant(items)}
  bandwidth = read_bandwidth(items, stored["fp32"])
  for dt in args.dtypes:
    if dt != "fp32":
      stored[dt] = tf.cast(stored["fp32"], TF_DTYPE[dt])
  ids_tf = tf.range(N, dtype=tf.int32)
  faiss_index, faiss_sq = None, {}
  if faiss is not None and not args.quick:
    faiss_index = faiss.IndexFlatIP(D)
    faiss_index.add(items)
    for dt, qt in (("fp16", "QT_fp16"), ("bf16", "QT_bf16")):
      if dt in args.dtypes and hasattr(faiss.ScalarQuantizer, qt):
        index = faiss.IndexScalarQuantizer(D, getattr(faiss.ScalarQuantizer, qt),
                                           faiss.METRIC_INNER_PRODUCT)
        index.train(items[:10000])
        index.add(items)
        faiss_sq[dt] = index
  threads = {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
             "faiss_omp": faiss.omp_get_max_threads() if faiss is not None else None}
  print(f"{model}; avx512={has_avx512}; paths {isas}; read bandwidth {bandwidth / 1e9:.1f} GB/s; "
        f"threads {threads}", flush=True)

  cells = []
  for r, rate in enumerate(args.rates):
    passes = ((bits >> (r + 1)) & 1).astype(bool)
    passing = int(passes.sum())
    for batch in args.batches:
      queries = rng.standard_normal((batch, D)).astype(np.float32)
      q_tf = tf.constant(queries)
      program = tf.constant(program_for(r + 1, batch))
      fp32_ms = {}
      for dt in args.dtypes:
        cell = dict(kind=dt, B=batch, pass_rate=rate, passing=passing, K=K, ms={},
                    load_before=os.getloadavg()[0])
        results = {}
        for isa in isas:
          def op_fn(dt=dt):
            out = ops.filtered_top_k(q_tf, stored[dt], item_bits, program, K)
            return out.scores.numpy(), out.indices.numpy()
          fn = with_isa(isa, op_fn)
          cell["ms"][f"op/{isa}"] = timed(fn, args.reps, args.budget)
          results[isa] = fn()
        first = results[isas[0]]
        for isa in isas[1:]:  # every path gives the same bits
          assert np.array_equal(first[0].view(np.uint32), results[isa][0].view(np.uint32))
          assert np.array_equal(first[1], results[isa][1])
        names = []
        if not args.quick:
          if dt == "fp32":
            fns = fp32_anchors(items, stored["fp32"], ids_tf, passes, queries, K, faiss_index,
                               tfrs)
          else:
            fns = {"faiss_sq": faiss_search(faiss_sq[dt], passes, queries, K)} if dt in faiss_sq \
                else {}
          for name, fn in fns.items():
            cell["ms"][name] = timed(fn, 3, args.budget)
            top = np.asarray(fn())
            top = top[:, 0] if top.ndim == 2 and top.shape[0] == batch else top.ravel()[:1]
            if passing and name != "faiss_sq":  # sanity: same best score
              np.testing.assert_allclose(np.max(top), np.max(first[0][:, 0]), rtol=1e-3,
                                         atol=1e-3)
          names = list(fns)
          if dt == "fp32":
            fp32_ms = {n: cell["ms"][n] for n in names}
          elif fp32_ms:
            cell["fp32_anchor_ms"] = dict(fp32_ms)
        cell["floor_ms"] = (N * 4 + passing * D * ITEMSIZE[dt]) / bandwidth * 1e3
        cell["load_after"] = os.getloadavg()[0]
        cells.append(summarize_cell(cell, names))
        print_cell(cell)

  if not args.no_hamming:
    cells += hamming_rows(args, rng, isas, bandwidth)

  fp32_b1_full = [c for c in cells if c["kind"] == "fp32" and c["B"] == 1 and c["pass_rate"] == 1.0]
  compared = [c for c in cells if "speedup_vs_best_anchor" in c]
  allowed = [c for c in compared if c["floor_allows_2x"]]
  summary = dict(
      cpu_model=model,
      cells_ge_2x_best_anchor=sum(c["speedup_vs_best_anchor"] >= 2 for c in compared)
      if compared else None,
      cells_total=len(compared) if compared else None,
      cells_floor_allows_2x=len(allowed) if compared else None,
      cells_ge_2x_where_floor_allows=sum(c["speedup_vs_best_anchor"] >= 2 for c in allowed)
      if compared else None,
      b1_full_fp32_ratio_to_floor=fp32_b1_full[0]["op_ratio_to_floor"] if fp32_b1_full else None,
      b1_full_fp32_ms=fp32_b1_full[0]["ms"] if fp32_b1_full else None,
      worst_ratio_to_floor=max(c["op_ratio_to_floor"] for c in cells) if cells else None,
  )
  if not compared:
    notes.append("anchors not run (--quick): anchor counts are null")
  meta = dict(N=N, d=D, K=K, hamming_N=HAMMING_N, hamming_bits=32 * HAMMING_WORDS,
              bandwidth_GBps=bandwidth / 1e9, cpu_model=model, nproc=os.cpu_count(),
              isa_flags=sorted(f for f in flags if f.startswith(("avx", "fma", "f16c", "bmi",
                                                                  "popcnt", "amx", "vpopcnt"))),
              paths=isas, threads=threads, python=platform.python_version(),
              tensorflow=tf.__version__, numpy=np.__version__,
              faiss=getattr(faiss, "__version__", None),
              tfrs=getattr(tfrs, "__version__", None), notes=notes,
              command=" ".join([os.path.basename(sys.executable)] + sys.argv))
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    json.dump(dict(summary=summary, meta=meta, cells=cells), f, indent=1)
  print(json.dumps(summary, indent=1))
  print(f"wrote {out}")


def hamming_rows(args, rng, isas, bandwidth):
  """LinrHammingTopK over 8M x 128-bit codes, mask precomputed."""
  n, words = HAMMING_N, HAMMING_WORDS
  codes = rng.integers(0, 2**32, (n, words), dtype=np.uint64).astype(np.uint32)
  codes_tf = tf.constant(codes.view(np.int32))
  codes64 = codes.view(np.uint64)
  try:
    import faiss  # pylint: disable=import-outside-toplevel
    faiss_bin = faiss.IndexBinaryFlat(32 * words)
    faiss_bin.add(codes.view(np.uint8))
  except ImportError:
    faiss, faiss_bin = None, None
  cells = []
  for rate in args.rates:
    passes = rng.random(n) < rate
    bitmap = np.packbits(passes, bitorder="little")
    passing = int(passes.sum())
    mask_row = pack_mask(passes)
    lines = int(passes.reshape(-1, 64 // (4 * words)).any(axis=1).sum())
    for batch in args.batches:
      queries = rng.integers(0, 2**32, (batch, words), dtype=np.uint64).astype(np.uint32)
      q_tf = tf.constant(queries.view(np.int32))
      mask_tf = tf.constant(np.tile(mask_row, (batch, 1)))
      cell = dict(kind="hamming", B=batch, pass_rate=rate, passing=passing, K=K, ms={},
                  load_before=os.getloadavg()[0])
      results = {}
      for isa in isas:
        fn = with_isa(isa, lambda: tuple(t.numpy() for t in ops.hamming_top_k(
            q_tf, codes_tf, mask_tf, K)))
        cell["ms"][f"op/{isa}"] = timed(fn, args.reps, args.budget)
        results[isa] = fn()
      for isa in isas[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[isas[0]], results[isa]))
      names = []
      if not args.quick:
        q64 = queries.view(np.uint64)
        mask_np = tf.constant(passes)
        total_bits = 32 * words

        def numpy_fn():
          out = []
          for b in range(batch):
            match = total_bits - np.bitwise_count(codes64 ^ q64[b]).sum(axis=1, dtype=np.int32)
            match[~passes] = -1
            part = np.argpartition(-match, K - 1)[:K]
            out.append(part[np.argsort(-match[part], kind="stable")])
          return out

        def tf_fn():
          x = tf.bitwise.bitwise_xor(codes_tf[None, :, :], q_tf[:, None, :])
          match = total_bits - tf.reduce_sum(tf.cast(tf.raw_ops.PopulationCount(x=x), tf.int32),
                                             axis=-1)
          match = tf.where(mask_np[None, :], match, -1)
          return tf.math.top_k(match, K)[1].numpy()

        def faiss_fn():
          params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)))
          return faiss_bin.search(queries.view(np.uint8), K, params=params)[0]

        fns = {}
        if faiss_bin is not None:
          fns["faiss_binary"] = faiss_fn
        if batch == 1:  # B x N x words intermediates: seconds per call beyond B = 1
          if hasattr(np, "bitwise_count"):  # numpy >= 2.0
            fns["numpy"] = numpy_fn
          fns["tf"] = tf_fn
        for name, fn in fns.items():
          cell["ms"][name] = timed(fn, 3, args.budget)
        names = list(fns)
      cell["floor_ms"] = (batch * mask_row.nbytes + lines * 64) / bandwidth * 1e3
      cell["load_after"] = os.getloadavg()[0]
      cells.append(summarize_cell(cell, names))
      print_cell(cell)
  return cells


if __name__ == "__main__":
  main()
