"""Markdown tables of bench/results/mol.json (the MoL section of
bench/RESULTS.md):

    python3 bench/mol_report.py [bench/results/mol.json]
"""

import json
import sys


def cell(pair, digits=4, pct=False):
  mean, half = pair
  if mean is None:
    return "—"
  if pct:
    return f"{100 * mean:+.1f} %" + ("" if half is None else f" ± {100 * half:.1f}")
  return f"{mean:.{digits}f}" + ("" if half is None else f" ± {half:.{digits}f}")


def main(path):
  with open(path) as f:
    doc = json.load(f)
  print("| row | seeds | val Recall@10 | HR@10 | Recall@10 | Recall@100 | NDCG@10 | "
        "Recall@10 gain vs dot |")
  print("|---|---|---|---|---|---|---|---|")
  for name, row in doc["table"].items():
    gain = "—" if name.startswith("dot") else cell(row["recall10_gain_rel"], pct=True)
    val = cell(row["val_recall10"]) if "val_recall10" in row else "—"
    print(f"| {name} | {row['seeds']} | {val} | {cell(row['test_hr10'], 3)} | "
          f"{cell(row['test_recall10'])} | {cell(row['test_recall100'], 3)} | "
          f"{cell(row['test_ndcg10'])} | {gain} |")
  print()
  print("| row | id dropout | seeds | cold Recall@10 (all items) | cold Recall@100 (all) | "
        "cold Recall@10 (among cold) | cold Recall@100 (among cold) |")
  print("|---|---|---|---|---|---|---|")
  for label, table in (("0.1", doc["table"]), ("0 (ablation)", doc.get(
      "cold_ablation_no_id_dropout", {}))):
    for name, row in table.items():
      print(f"| {name} | {label} | {row['seeds']} | {cell(row['cold_recall10'])} | "
            f"{cell(row['cold_recall100'], 3)} | {cell(row['cold_only_recall10'], 3)} | "
            f"{cell(row['cold_only_recall100'], 3)} |")
  print()
  print("| filter | pass rate | queries | = unfiltered then filter | scores = brute force | "
        "ids = brute force (or a near tie < 1e-5) |")
  print("|---|---|---|---|---|---|")
  for name, f in (doc.get("filtered_check") or {}).items():
    print(f"| {name} | {100 * f['pass_rate']:.1f} % | {f['queries']} | "
          f"{f['equal_to_unfiltered_then_filter']} | {f['scores_equal_to_brute_force']} | "
          f"{f['ids_equal_to_brute_force_or_near_tie']} |")
  print()
  print(json.dumps(doc["summary"], indent=1))


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/mol.json")
