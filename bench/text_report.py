"""Markdown tables of bench/results/text.json (for bench/RESULTS.md).

  PYTHONPATH=. .venv/bin/python bench/text_report.py bench/results/text.json
"""

import json
import sys

ROWS = [
    ("minilm_zero_shot", "MiniLM zero-shot (no training)"),
    ("minilm_head/base", "MiniLM + head: percentile tokens, InfoNCE, 1 hard neg, mean"),
    ("minilm_head/raw_numbers", "MiniLM + head: raw numbers"),
    ("minilm_head/bce", "MiniLM + head: BCE"),
    ("minilm_head/hard_negatives_0", "MiniLM + head: 0 hard negatives"),
    ("minilm_head/hard_negatives_2", "MiniLM + head: 2 hard negatives"),
    ("minilm_head/last_token_pooling", "MiniLM + head: last-token pooling"),
    ("minilm_head/matryoshka_384", "MiniLM + head base, prefix 384"),
    ("minilm_head/matryoshka_256", "MiniLM + head base, prefix 256"),
    ("minilm_head/matryoshka_128", "MiniLM + head base, prefix 128"),
    ("minilm_head/matryoshka_64", "MiniLM + head base, prefix 64"),
    ("minilm_head/matryoshka_32", "MiniLM + head base, prefix 32"),
    ("scratch/base", "from-scratch Transformer: percentile tokens"),
    ("scratch/raw_numbers", "from-scratch Transformer: raw numbers"),
    ("id_two_tower", "id two-tower (user id, item id)"),
    ("popularity", "popularity"),
]


def cell(x):
  if not x:
    return "–"
  if x["ci95"] is None:
    return f"{x['mean']:.4f}"
  return f"{x['mean']:.4f} ± {x['ci95']:.4f}"


def main():
  out = json.load(open(sys.argv[1]))
  t = out["tables"]
  print("| model | R@10 | R@100 | warm R@10 | cold R@10 | cold R@100 | new members R@10 |")
  print("|---|---|---|---|---|---|---|")
  for key, label in ROWS:
    if key not in t:
      continue
    r = t[key]
    print(f"| {label} | {cell(r['all']['recall@10'])} | {cell(r['all']['recall@100'])} | "
          f"{cell(r['warm']['recall@10'])} | {cell(r['cold']['recall@10'])} | "
          f"{cell(r['cold']['recall@100'])} | {cell(r['new_members']['recall@10'])} |")
  print()
  print("members per cohort:", t["minilm_head/base"]["members"] if "minilm_head/base" in t else "")
  print("summary:", json.dumps(out["summary"]))
  print("served:", json.dumps(out.get("served_check")))
  if "cost" in out:
    print("cost:", json.dumps(out["cost"]))


if __name__ == "__main__":
  main()
