"""Where the GPU top-k's time goes, at LiNR's shape, for one or two builds.

    python3 bench/gpu/profile_topk.py --libs OLD/liblinr_cuda.so NEW/liblinr_cuda.so \
        [--n 15500000] [--k 2000] [--out $OUT]

For each build: filter_mask + top-k (mask and prefilter strategies) at
B = 1 / 16 and pass rates 10 % / 1 % / 0.1 %, CUDA-event medians; the results
of every build must be bit-identical to the first's. For the last build, a
torch.profiler breakdown of one call per cell (time per kernel), which is
what bench/RESULTS.md's "where the time goes" cites. PyTorch V1 / V2 anchors
on the same masks and the HBM floor of one scan (bandwidth measured here).
No TensorFlow.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEV, read_bandwidth, timeit  # noqa: E402
from harness import Lib, programs_for  # noqa: E402


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--libs", nargs="+", required=True)
  ap.add_argument("--n", type=int, default=15_500_000)
  ap.add_argument("--d", type=int, default=128)
  ap.add_argument("--k", type=int, default=2000)
  ap.add_argument("--out", default=None)
  args = ap.parse_args()
  libs = [Lib(p) for p in args.libs]
  n, d, k = args.n, args.d, args.k
  g = torch.Generator(device=DEV).manual_seed(7)
  items = torch.randn(n, d, generator=g, device=DEV, dtype=torch.float16)
  region, typ, tier = (torch.randint(0, 10, (n,), generator=g, device=DEV, dtype=torch.int32)
                       for _ in range(3))
  one = torch.ones((), dtype=torch.int32, device=DEV)
  bits = (one | (one << (1 + region)) | (one << (11 + typ)) | (one << (21 + tier))).view(n, 1)
  bw = read_bandwidth(items.view(-1), 2, 10)
  floor_ms = n * d * 2 / bw * 1e3
  print(f"N={n:,} d={d} K={k} read bandwidth {bw / 1e12:.2f} TB/s, scan floor {floor_ms:.3f} ms",
        flush=True)
  rows = []
  for rate in (0.1, 0.01, 0.001):
    for b in (1, 16):
      prog = torch.from_numpy(programs_for(rate, b)).to(DEV)
      q = torch.randn(b, d, generator=g, device=DEV)
      mask, cnt = libs[0].filter_mask(bits, prog)
      row = dict(n=n, batch=b, k=k, pass_rate=float(cnt.float().mean()) / n, floor_ms=floor_ms)
      row["filter_mask_ms"] = timeit(lambda: libs[-1].filter_mask(bits, prog), 3, 20)
      for name, st in (("mask", 0), ("prefilter", 1)):
        ref = None
        for li, lib in enumerate(libs):
          out = lib.topk(q, items, mask, k, st)
          torch.cuda.synchronize()
          if ref is None:
            ref = [t.clone() for t in out]
          else:
            same = all(torch.equal(a, b_) for a, b_ in zip(ref, out))
            row[f"{name}_identical_{li}"] = same
          row[f"{name}_ms_{li}"] = timeit(lambda: lib.topk(q, items, mask, k, st), 3, 20)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
          libs[-1].topk(q, items, mask, k, st)
          torch.cuda.synchronize()
        kernels = {}
        for ev in prof.key_averages():
          if ev.device_time_total > 0:
            kernels[ev.key[:60]] = (round(ev.device_time_total / 1e3, 4), ev.count)
        row[f"{name}_kernels"] = kernels
      # Anchors: bool masks precomputed, not timed.
      passes = torch.ones(b, n, dtype=torch.bool, device=DEV)
      for i in range(b):
        if rate <= 0.1:
          passes[i] &= region == i % 10
        if rate <= 0.01:
          passes[i] &= typ == (i // 10) % 10
        if rate <= 0.001:
          passes[i] &= tier == (i // 100) % 10
      qh = q.half()
      kk = min(k, int(passes.sum(1).min()))

      def v1():
        s = (qh @ items.T).float().masked_fill_(~passes, float("-inf"))
        return torch.topk(s, k, dim=1)

      def v2():
        outs = []
        for i in range(b):
          idx = passes[i].nonzero().squeeze(1)
          s = (items.index_select(0, idx) @ qh[i]).float()
          outs.append(torch.topk(s, kk))
        return outs
      row["torch_v1_ms"] = timeit(v1, 3, 20)
      row["torch_v2_ms"] = timeit(v2, 3, 20)
      del passes
      torch.cuda.empty_cache()
      print(json.dumps(row), flush=True)
      rows.append(row)
  if args.out:
    with open(os.path.join(args.out, "profile_topk.json"), "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
