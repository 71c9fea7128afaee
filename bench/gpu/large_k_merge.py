"""Merges the large-k harness's result (bench/gpu/hamming_large_k.py ->
hamming_large_k.json) into a results file such as
bench/results/gpu_hamming.json: sets summary.top50m_1b_64bit_ms (keeping every
other summary key, and adding b64_1b_full_ms / b64_1b_10pct_ms as null when
absent) and a `large_k` section with the rows, the crossover and the
correctness count. No GPU, no torch: runs on the CPU machine too.

  python3 bench/gpu/large_k_merge.py --from $OUT/hamming_large_k.json \
      --into bench/results/gpu_hamming.json
"""
import argparse
import json

SECTION_KEYS = ("device", "torch", "summary", "rows", "crossover", "bandwidth",
                "correctness_pass", "correctness_total", "note")


def merge_into(path, res):
    """Updates the JSON file `path` with the large-k result `res` (a dict);
    refuses a result whose correctness suite did not fully pass."""
    if res.get("correctness_pass") != res.get("correctness_total"):
        raise ValueError(f"large-k correctness {res.get('correctness_pass')}/"
                         f"{res.get('correctness_total')}: not merging")
    with open(path) as f:
        target = json.load(f)
    summary = target.setdefault("summary", {})
    for key in ("b64_1b_full_ms", "b64_1b_10pct_ms"):
        summary.setdefault(key, None)
    summary["top50m_1b_64bit_ms"] = res["summary"]["top50m_1b_64bit_ms"]
    target["large_k"] = {key: res.get(key) for key in SECTION_KEYS}
    with open(path, "w") as f:
        json.dump(target, f, indent=1)
    return summary["top50m_1b_64bit_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src", required=True, help="hamming_large_k.json")
    ap.add_argument("--into", required=True, help="e.g. bench/results/gpu_hamming.json")
    args = ap.parse_args()
    with open(args.src) as f:
        res = json.load(f)
    ms = merge_into(args.into, res)
    print(f"summary.top50m_1b_64bit_ms = {ms} -> {args.into}")


if __name__ == "__main__":
    main()
