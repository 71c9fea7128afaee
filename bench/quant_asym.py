"""Asymmetric 1-bit codes (issue 14): recall and scan cost of RaBitQSearch
next to symmetric Sign-OPORP Hamming search and FAISS at equal bits.

Writes into bench/results/quant.json (other keys kept):

  asym_recall   per data set, m and method: stage-1 recall@100 (top 100 by
                codes = r = 1) and recall@100 after an exact rerank of the top
                r * 100 (r in 1, 2, 4, 10), against exact dot-product search.
                Methods: symmetric Sign-OPORP (LinrHammingTopK), asymmetric
                RaBitQ with Bq = 1 / 4 / 8 (LinrAsymmetricHammingTopK; items
                centered on their mean, as ItemIndex.assign does), FAISS
                IndexRaBitQ (1 bit per dimension of an m-dim random rotation,
                IndexPreTransform, query bits qb = 4, its own centroid and two
                float factors per item) and FAISS IndexLSH (m bits), the last
                two reranked by the same exact numpy rerank. bytes_per_item
                counts codes + per-item scalars (never the rerank vectors).
  asym_latency  1M x 128-bit codes, k = 100, B in 1 / 64, pass 100 % / 10 %:
                LinrHammingTopK, LinrAsymmetricHammingTopK (Bq = 1 / 4 / 8),
                FAISS IndexRaBitQ (IDSelectorBitmap for the filter);
                interleaved, median ms. Stage 1 only, queries pre-encoded.
  summary       recall100_16x_demo_best (best recall@100 on the demo
                embeddings at >= 16x memory saving vs fp32 vectors, scalars
                counted, r <= 4), rerank_factor_at_best (its r, with its m and
                method), faiss_rabitq_recall100_same_bits (FAISS IndexRaBitQ
                at that m and r), asym_vs_sym_scan_cost_ratio (Bq = 4 over
                symmetric, 1M x 128-bit, B = 64, 100 % pass; B = 1 beside it).

Data: the trained demo model's embeddings (bench/quant_demo_embeddings.py,
N = 100k, d = 64, 1000 held-out users' queries), random unit vectors
(N = 100k, d = 128, 200 queries) and a two-tower model trained on
MovieLens-100k (bench/quant_movielens_embeddings.py, N = 1682, d = 64; used
when its cache exists).

  PYTHONPATH=. .venv/bin/python bench/quant_asym.py [--quick] [--data=demo,random,movielens] [--skip_latency]
  PYTHONPATH=. .venv/bin/python bench/quant_asym.py --report     # the RESULTS.md tables
"""

import argparse
import json
import os
import platform
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
from linr_tf.quantization import RaBitQ, SignOPORP, two_stage_search  # noqa: E402
from quant_recall import (K, exact_top_k, pack_pass, recall_at, rerank_np,  # noqa: E402
                          timed_pair, unit_rows)

FACTORS = [1, 2, 4, 10]
QUERY_BITS = [1, 4, 8]


def _rows_for(name, n, d, m, method, bytes_per_item, recalls):
  out = []
  for r, rec in zip(FACTORS, recalls):
    out.append(dict(data=name, n=n, d=d, m=m, method=method, r=r,
                    recall_at_100=round(rec, 4), stage1_recall_at_100=round(recalls[0], 4),
                    bytes_per_item=bytes_per_item,
                    compression_vs_fp32=round(4 * d / bytes_per_item, 2)))
  print(f"{name:10s} m={m:3d} {method:22s} {bytes_per_item:3d} B  "
        + "  ".join(f"r={r}:{rec:.3f}" for r, rec in zip(FACTORS, recalls)), flush=True)
  return out


def recall_rows(name, items, queries, bits_list, faiss):
  n, d = items.shape
  exact = exact_top_k(queries, items, K)
  rows = []
  for m in bits_list:
    enc = SignOPORP(d, m, seed=1)
    codes = enc(items)
    rec = [recall_at(two_stage_search(queries, enc, codes, items, k=K, rerank_factor=r)
                     .indices.numpy(), exact) for r in FACTORS]
    rows += _rows_for(name, n, d, m, "sign-oporp hamming", m // 8, rec)
    for qb in QUERY_BITS:
      rq = RaBitQ(d, m, seed=1, query_bits=qb)
      rq.set_center(items)   # as ItemIndex.assign does
      rq_codes, factors = rq.encode_items(items)
      rec = [recall_at(two_stage_search(queries, rq, rq_codes, items, k=K, rerank_factor=r,
                                        item_factors=factors).indices.numpy(), exact)
             for r in FACTORS]
      rows += _rows_for(name, n, d, m, f"rabitq Bq={qb}", m // 8 + 4, rec)
    index = faiss.IndexPreTransform(faiss.RandomRotationMatrix(d, m),
                                    faiss.IndexRaBitQ(m, faiss.METRIC_INNER_PRODUCT))
    index.train(items)
    index.add(items)
    params = faiss.RaBitQSearchParameters()
    params.qb = 4
    rec = []
    for r in FACTORS:
      _, cand = index.search(queries, r * K, params=params)
      rec.append(recall_at(rerank_np(queries, items, cand, K), exact))
    rows += _rows_for(name, n, d, m, "faiss IndexRaBitQ qb=4",
                      int(faiss.downcast_index(index.index).code_size), rec)
    lsh = faiss.IndexLSH(d, m, True, False)
    lsh.train(items)
    lsh.add(items)
    rec = []
    for r in FACTORS:
      _, cand = lsh.search(queries, r * K)
      rec.append(recall_at(rerank_np(queries, items, cand, K), exact))
    rows += _rows_for(name, n, d, m, "faiss IndexLSH", m // 8, rec)
  return rows


def latency_rows(rng, n, faiss, m=128, d=128):
  """Stage-1 scan cost: random unit vectors, 1M x m-bit codes."""
  items = unit_rows(rng, n, d)
  enc = SignOPORP(d, m, seed=1)
  codes = enc(items)
  rqs = {qb: RaBitQ(d, m, seed=1, query_bits=qb) for qb in QUERY_BITS}
  _, factors = rqs[4].encode_items(items)
  index = faiss.IndexPreTransform(faiss.RandomRotationMatrix(d, m),
                                  faiss.IndexRaBitQ(m, faiss.METRIC_INNER_PRODUCT))
  index.train(items[:100_000])
  index.add(items)
  rows = []
  for batch in (1, 64):
    queries = unit_rows(rng, batch, d)
    q_codes = enc(queries)
    encoded = {qb: rq.encode_query(queries) for qb, rq in rqs.items()}
    for rate in (1.0, 0.1):
      passes = rng.random(n) < rate
      bitmap, mask_row = pack_pass(passes)
      mask = tf.constant(np.tile(mask_row, (batch, 1)))
      params = faiss.RaBitQSearchParameters()
      params.qb = 4
      if rate < 1.0:
        params.sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
      sym = lambda: ops.hamming_top_k(q_codes, codes, mask, K).scores.numpy()  # noqa: E731
      row = dict(n=n, m=m, batch=batch, pass_rate=rate, k=K)
      for qb in QUERY_BITS:
        planes, scales = encoded[qb]
        asym = lambda: ops.asymmetric_hamming_top_k(  # noqa: E731
            planes, scales, codes, factors, mask, K).scores.numpy()
        s_ms, _, a_ms, _ = timed_pair(sym, asym, reps=7, budget_s=4.0)
        row[f"asym_bq{qb}_ms"] = round(a_ms, 2)
        row.setdefault("sym_ms", round(s_ms, 2))
      fa = lambda: index.search(queries, K, params=params)  # noqa: E731
      _, _, f_ms, _ = timed_pair(sym, fa, reps=5, budget_s=4.0)
      row["faiss_rabitq_qb4_ms"] = round(f_ms, 2)
      row["asym_bq4_over_sym"] = round(row["asym_bq4_ms"] / row["sym_ms"], 2)
      rows.append(row)
      print(f"B={batch:2d} pass={rate:4.0%} sym {row['sym_ms']:7.2f}  asym Bq=1/4/8 "
            f"{row['asym_bq1_ms']:7.2f} / {row['asym_bq4_ms']:7.2f} / {row['asym_bq8_ms']:7.2f}"
            f"  FAISS RaBitQ {f_ms:7.2f} ms", flush=True)
  return rows


def summary(recall, latency):
  demo = [r for r in recall if r["data"] == "demo"]
  ours = [r for r in demo if not r["method"].startswith("faiss") and r["r"] <= 4
          and r["compression_vs_fp32"] >= 16]
  best = max(ours, key=lambda r: (r["recall_at_100"], -r["r"], -r["bytes_per_item"]))
  faiss_same = [r for r in demo if r["method"].startswith("faiss IndexRaBitQ")
                and r["m"] == best["m"] and r["r"] == best["r"]]
  ratio = {row["batch"]: row["asym_bq4_over_sym"] for row in latency if row["pass_rate"] == 1.0}
  return dict(recall100_16x_demo_best=best["recall_at_100"],
              rerank_factor_at_best=best["r"],
              best_config=dict(method=best["method"], m=best["m"],
                               bytes_per_item=best["bytes_per_item"],
                               compression_vs_fp32=best["compression_vs_fp32"]),
              faiss_rabitq_recall100_same_bits=(faiss_same[0]["recall_at_100"]
                                                if faiss_same else None),
              asym_vs_sym_scan_cost_ratio=ratio.get(64),
              asym_vs_sym_scan_cost_ratio_b1=ratio.get(1),
              goal_recall100_met=best["recall_at_100"] >= 0.95,
              h200_latency="not measured (no GPU in this session; tests/gpu/asym_gpu_test.py "
                           "checks the CUDA kernel there)")


def markdown(result) -> str:
  """The RESULTS.md tables of a quant.json (`--report`)."""
  out = []
  for name in dict.fromkeys(r["data"] for r in result["asym_recall"]):
    rows = [r for r in result["asym_recall"] if r["data"] == name]
    out.append(f"**{name}** (N = {rows[0]['n']:,}, d = {rows[0]['d']}): stage-1 recall@100 "
               "(r = 1) and recall@100 after the exact rerank of the top r·100\n")
    out.append("| m | method | B/item | ×fp32 | r = 1 (stage 1) | r = 2 | r = 4 | r = 10 |")
    out.append("|---|---|---|---|---|---|---|---|")
    for key in dict.fromkeys((r["m"], r["method"]) for r in rows):
      rr = {r["r"]: r for r in rows if (r["m"], r["method"]) == key}
      first = rr[1]
      out.append(f"| {key[0]} | {key[1]} | {first['bytes_per_item']} | "
                 f"{first['compression_vs_fp32']:g} | "
                 + " | ".join(f"{rr[r]['recall_at_100']:.3f}" for r in FACTORS) + " |")
    out.append("")
  out.append("Stage-1 scan, 1M × 128-bit codes, k = 100, median ms (CPU, queries pre-encoded)\n")
  out.append("| B | pass | symmetric (LinrHammingTopK) | asym Bq = 1 | Bq = 4 | Bq = 8 | "
             "Bq = 4 / sym | FAISS IndexRaBitQ qb = 4 |")
  out.append("|---|---|---|---|---|---|---|---|")
  for r in result["asym_latency"]:
    out.append(f"| {r['batch']} | {r['pass_rate']:.0%} | {r['sym_ms']} | {r['asym_bq1_ms']} | "
               f"{r['asym_bq4_ms']} | {r['asym_bq8_ms']} | {r['asym_bq4_over_sym']} | "
               f"{r['faiss_rabitq_qb4_ms']} |")
  return "\n".join(out)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
  parser.add_argument("--data", default="demo,random,movielens",
                      help="recall data sets (rows of others already in --out are kept)")
  parser.add_argument("--skip_latency", action="store_true")
  parser.add_argument("--report", action="store_true", help="print the tables of --out, run nothing")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "quant.json"))
  args = parser.parse_args()
  if args.report:
    with open(args.out) as f:
      print(markdown(json.load(f)))
    return
  import faiss  # pylint: disable=import-outside-toplevel
  import quant_demo_embeddings  # pylint: disable=import-outside-toplevel
  import quant_movielens_embeddings  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  t0 = time.time()
  n_recall, n_latency = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
  result = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      result = json.load(f)
  data = args.data.split(",")
  recall = []
  if "demo" in data:
    demo_items, demo_queries, _ = quant_demo_embeddings.load_or_build()
    if args.quick:
      demo_items, demo_queries = demo_items[:n_recall], demo_queries[:100]
    recall += recall_rows("demo", demo_items, demo_queries, [64, 96, 128, 256], faiss)
  if "random" in data:
    recall += recall_rows("random-128d", unit_rows(rng, n_recall, 128),
                          unit_rows(rng, 200, 128), [128, 256], faiss)
  if "movielens" in data:
    cached = quant_movielens_embeddings.load()
    if cached is None:
      print("movielens: no cache (see bench/quant_movielens_embeddings.py); skipped")
    else:
      recall += recall_rows("movielens", cached[0], cached[1], [64, 96, 128], faiss)
      result["movielens_embeddings"] = cached[2]
  names = {r["data"] for r in recall}
  recall = [r for r in result.get("asym_recall", []) if r["data"] not in names] + recall
  latency = result.get("asym_latency", [])
  if not args.skip_latency:
    latency = latency_rows(rng, n_latency, faiss)
  result["asym_recall"] = recall
  result["asym_latency"] = latency
  result["summary"] = summary(recall, latency)
  result["asym_env"] = dict(machine=platform.machine(), cpus=os.cpu_count(),
                            faiss=faiss.__version__, quick=args.quick,
                            linr_cpu_isa=os.environ.get("LINR_CPU_ISA", "(auto)"),
                            bench_s=round(time.time() - t0))
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result["summary"], indent=1))
  print("wrote", args.out)


if __name__ == "__main__":
  main()
