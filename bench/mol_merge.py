"""Merges the rows of second `bench/mol.py --dot_from MAIN` processes into
MAIN (the same tuned dot product's seeds, so the paired gains stay paired)
and re-derives the table and the summary. The goal row of the summary is
the fixed-cluster row with the best mean *validation* Recall@10 (never the
test split).

    python3 bench/mol_merge.py bench/results/mol.json OTHER.json [...]
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import mol  # noqa: E402


def main(main_path, others):
  with open(main_path) as f:
    doc = json.load(f)
  dot_name = mol.ROWS[0].name
  for path in others:
    with open(path) as f:
      other = json.load(f)
    if other["per_seed"][dot_name] != doc["per_seed"][dot_name]:
      raise ValueError(f"{path}: its dot-product seeds are not {main_path}'s")
    for name, runs in other["per_seed"].items():
      if name != dot_name:
        doc["per_seed"][name] = runs
  dot = doc["per_seed"][dot_name]
  doc["table"] = {name: mol.summarise(runs, dot) for name, runs in doc["per_seed"].items()}
  for name, row in doc["table"].items():
    vals = [r["val"]["recall10"] for r in doc["per_seed"][name]]
    row["val_recall10"] = [sum(vals) / len(vals), None]
  fixed = [n for n in doc["table"] if "fixed clusters" in n]
  goal = max(fixed, key=lambda n: doc["table"][n]["val_recall10"][0])
  row, nocl = doc["table"][goal], doc["table"][mol.NO_CLUSTER_ROW]
  g_mean, g_half = row["recall10_gain_rel"]
  doc["summary"].update({
      "recall10_gain_rel_mean": g_mean,
      "recall10_gain_rel_ci95_low": None if g_half is None else g_mean - g_half,
      "cold_recall10_clusters": row["cold_recall10"][0],
      "cold_recall10_no_clusters": nocl["cold_recall10"][0]})
  doc["notes"]["goal_row"] = (f"{goal}: of the fixed-cluster rows ({', '.join(fixed)}), the "
                              "best mean validation Recall@10 (bench/mol_merge.py)")
  doc["notes"]["cold"] = doc["notes"]["cold"].replace(f"clusters = {mol.GOAL_ROW}",
                                                      f"clusters = {goal}")
  with open(main_path, "w") as f:
    json.dump(doc, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2:])
