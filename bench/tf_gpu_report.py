"""Merges the H200 runs under bench/results/tf_gpu_runs/ into
bench/results/tf_gpu.json (rows + summary) and bench/tf_gpu.png.

    .venv/bin/python bench/tf_gpu_report.py

Inputs (raw outputs of bench/tf_gpu.py, bench/serving_load.py,
bench/tf_gpu_updates.py and tests/gpu/run.sh, copied from the GPU machine
unchanged):
  run69_15m_100m_profile.json  commit 028480a: op + signature rows at 15.5M, op
                               rows at 100M, TF profiler summaries and one
                               call's timeline per cell (`profile`);
  run73_gpu_tests.log          the GPU tests at commit 3b7889b (after the float64
                               bound fix; run 69: 113 passed, 1 failed);
  run70_serving_load.json      serving load at 15.5M, same build;
  run70_updates.json           query latency under upserts, same build;
  run35_op_15m_100m.json       PyTorch V1/V2 on the same shapes (own process,
                               same machine; its op rows are older kernels);
  run67_*, run68_*, run37_*    commit 54775e3 / older: the previous figures
                               (run 68's serving failed: placement bug);
  run54_15m_profile.json       commit 0e5193b (before the request checks moved
                               to the host and the selection rewrite).
Floors: item bytes over 4.30 TB/s (run 1's device-to-device copy traffic); an
in-TF float16-sum probe gave impossible figures at 100M and is not used.
"""

import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(HERE, "results", "tf_gpu_runs")
BANDWIDTH = 4.30e12          # bytes/s, run 1 (D2D copy, read + write traffic)
DIM = 128
KEEP = ("n", "batch", "pass_rate", "k", "level", "ours_p50_ms", "ours_p95_ms",
        "tf_where_ms", "tf_boolean_mask_ms", "device")


def load(name):
  with open(os.path.join(RUNS, name)) as fh:
    return json.load(fh)


def serving_rows(run):
  """Rows `api, concurrency, qps, p50_ms, p99_ms, errors`; qps counts answered
  requests only (a request answered with an error is not a query served)."""
  out = []
  for r in run["rows"]:
    row = {"api": r["protocol"], "concurrency": r["concurrency"], "batching": r["batching"],
           "requests": r["requests"], "errors": r["errors"],
           "qps": round((r["requests"] - r["errors"]) / run["seconds_per_cell"], 1),
           "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}
    if r.get("first_error"):
      row["first_error"] = r["first_error"][:300]
    out.append(row)
  return out


def main():
  run67, run35 = load("run69_15m_100m_profile.json"), load("run35_op_15m_100m.json")
  serving = load("run70_serving_load.json")
  updates = load("run70_updates.json")
  with open(os.path.join(RUNS, "run73_gpu_tests.log")) as fh:
    tests = re.search(r"gpu-tests: (\d+) passed, (\d+) failed", fh.read())
  torch = {(r["n"], r["pass_rate"] < 0.05, r["batch"]): r["torch_ms"] for r in run35["rows"]}
  rows = []
  for r in run67["rows"]:
    r = {key: r[key] for key in KEEP}
    r["floor_ms"] = r["n"] * DIM * 2 / BANDWIDTH * 1e3
    t = torch.get((r["n"], r["pass_rate"] < 0.05, r["batch"]), {})
    r["torch_ms"] = t
    r["torch_best_ms"] = min(v["p50"] for v in t.values()) if t else None
    r["run"] = "run69"
    rows.append(r)
  rows.sort(key=lambda r: (r["n"], -r["pass_rate"], r["batch"], r["level"]))

  def sig(low, b):
    return next((r["ours_p95_ms"] for r in rows if r["level"] == "signature" and
                 r["n"] == 15_500_000 and r["batch"] == b and (r["pass_rate"] < 0.05) == low), None)

  b16 = [r for r in rows if r["batch"] == 16 and r["level"] == "op"]
  served = serving_rows(serving)
  c64 = [r for r in served if r["concurrency"] == 64]
  summary = {
      "sig_p95_ms_15m_high_b1": sig(False, 1), "sig_p95_ms_15m_high_b16": sig(False, 16),
      "sig_p95_ms_15m_low_b1": sig(True, 1), "sig_p95_ms_15m_low_b16": sig(True, 16),
      "speedup_vs_best_stock_tf_b16": min(min(r["tf_where_ms"], r["tf_boolean_mask_ms"]) /
                                          r["ours_p50_ms"] for r in b16),
      "worst_ratio_vs_torch": max(r["ours_p50_ms"] / r["torch_best_ms"]
                                  for r in rows if r["torch_best_ms"]),
      # The worse of REST and gRPC at concurrency 64.
      "serving_qps_c64": min(r["qps"] for r in c64) if c64 else None,
      "serving_p99_ms_c64": max(r["p99_ms"] for r in c64) if c64 else None,
      "serving_errors": sum(r["errors"] for r in served),
      "p95_regression_1k_upserts": _regression(updates["rows"], 1_000),
      "p95_regression_10k_upserts": _regression(updates["rows"], 10_000),
      "gpu_tests_passed": int(tests.group(1)), "gpu_tests_failed": int(tests.group(2)),
  }
  out = {"device": "NVIDIA H200 (143,771 MiB), TF 2.21.0, CUDA build of the op library",
         "bandwidth_bytes_per_s": BANDWIDTH, "k": 2000, "dim": DIM, "dtype": "float16",
         "commit": "028480a (runs 69, 70)",
         "commands": ["python3 bench/tf_gpu.py --out $OUT/tfgpu --sizes 15500000,100000000 "
                      "--skip_torch --profile",
                      "python3 bench/serving_load.py --items 15500000 --dim 128 --vectors float16 "
                      "--concurrency 1,16,64,256 --batching on --seconds 5",
                      "python3 bench/tf_gpu_updates.py --out $OUT --n 15500000 --seconds 5",
                      "bash tests/gpu/run.sh"],
         "rows": rows, "serving": served,
         "serving_note": ("run 70: the model is exported by a process that sees no GPU and "
                          "served by serving/ on the H200 (variables placed on the GPU at "
                          "load); batch-1 requests, k = 10, dynamic batching on. Run 68 "
                          "(commit 54775e3) failed every request: LinrReadRows carried the "
                          "export-time CPU device, fixed in linr_tf/ops/rows_ops.py."),
         "updates": updates["rows"],
         "updates_note": ("run 70: B = 1, high pass, 15.5M; one upsert trace for every batch "
                          "size, warmed before timing (run 37's 1k/s cell retraced in its window)"),
         "summary": summary,
         "profile": {k: {"wall_ms_per_call": v["wall_ms_per_call"],
                         "gpu": v["planes"].get("/device:GPU:0", [])[:8]}
                     for k, v in run67.get("profile", {}).items()}}
  with open(os.path.join(HERE, "results", "tf_gpu.json"), "w") as fh:
    json.dump(out, fh, indent=1)
  print(json.dumps(summary, indent=1))
  plot(rows)


def _regression(rows, rate):
  """p95 at `rate` upserts/s over p95 without upserts, minus 1 (None if that
  cell did not reach 90 % of its rate)."""
  base = next(r["p95_ms"] for r in rows if r["upserts_per_s"] == 0)
  cell = next((r for r in rows if r["upserts_per_s"] == rate), None)
  if cell is None or cell["achieved_upserts_per_s"] < 0.9 * rate:
    return None
  return cell["p95_ms"] / base - 1


def plot(rows):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  cells = [r for r in rows if r["level"] == "op"]
  labels = [f"{r['n'] / 1e6:g}M\n{'low' if r['pass_rate'] < 0.05 else 'high'}\nB={r['batch']}"
            for r in cells]
  series = {
      "ours (op)": [r["ours_p50_ms"] for r in cells],
      "TF where+top_k": [r["tf_where_ms"] for r in cells],
      "TF boolean_mask+matmul+top_k": [r["tf_boolean_mask_ms"] for r in cells],
      "torch V1 (mask precomputed)": [r["torch_ms"].get("v1", {}).get("p50") for r in cells],
      "torch V2 (mask precomputed)": [r["torch_ms"].get("v2", {}).get("p50") for r in cells],
      "HBM floor": [r["floor_ms"] for r in cells],
  }
  fig, ax = plt.subplots(figsize=(11, 4.5))
  width = 0.14
  for i, (name, vals) in enumerate(series.items()):
    xs = [j + (i - 2.5) * width for j in range(len(cells))]
    ax.bar(xs, [v or 0 for v in vals], width, label=name)
  ax.set_yscale("log")
  ax.set_xticks(range(len(cells)))
  ax.set_xticklabels(labels, fontsize=8)
  ax.set_ylabel("p50 ms (log)")
  ax.set_title("Filtered top-2000 inside TensorFlow on an H200 (float16 x 128)")
  ax.legend(fontsize=7, ncol=3)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, "tf_gpu.png"), dpi=110)


if __name__ == "__main__":
  main()
