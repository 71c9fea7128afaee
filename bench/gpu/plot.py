"""Plot bench/gpu results (JSON from harness.py): time vs pass rate per (N, B, K)."""
import json
import sys


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = res["rows"]
    cells = sorted({(r["N"], r["B"], r["K"]) for r in rows})
    cols = min(3, len(cells))
    nrows = (len(cells) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.8 * nrows), squeeze=False)
    for ax, (n, b, k) in zip(axes.flat, cells):
        rs = sorted([r for r in rows if (r["N"], r["B"], r["K"]) == (n, b, k)], key=lambda r: -r["pass_rate"])
        x = [r["pass_rate"] * 100 for r in rs]
        for key, label, style in (("floor_ms", "HBM floor", "k--"), ("mask_ms", "LinrMaskedTopK (+mask)", "o-"),
                                  ("prefilter_ms", "LinrPrefilterTopK (+mask)", "s-"),
                                  ("anchor_matmul_ms", "torch matmul+masked_fill+topk", "^:"),
                                  ("anchor_nonzero_ms", "torch nonzero+index_select+matmul+topk", "v:")):
            pts = [(xx, r[key]) for xx, r in zip(x, rs) if r.get(key) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
        ax.set_xscale("log"); ax.set_yscale("log")
        ax.set_xlabel("pass rate (%)"); ax.set_ylabel("ms (median)")
        ax.set_title(f"N={n:,} B={b} K={k}")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(cells):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"filter_mask + top-k, 128-d fp16 items, {res.get('device','')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
