"""Stock PyTorch anchors of bench/tf_gpu.py, in their own process (PyTorch's
and TensorFlow's CUDA libraries in one process crash the first cuBLAS call on
the GPU machine: SIGFPE). Same shapes, attribute draws and pass masks as
bench/tf_gpu.py (same numpy generator sequence), masks precomputed, untimed:

  V1  matmul + masked_fill + topk          (LiNR's similarity masking)
  V2  nonzero + index_select + matmul + topk per query (explicit pre-filtering)

    python3 bench/gpu/torch_anchors.py --sizes 15500000 --out /tmp/torch.json
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from timing import timed  # noqa: E402

DIM, K = 128, 2000


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--sizes", default="15500000")
  p.add_argument("--out", required=True)
  args = p.parse_args()
  rng = np.random.default_rng(0)
  queries = rng.normal(size=(16, DIM)).astype(np.float32)
  out = {}
  for n in [int(x) for x in args.sizes.split(",")]:
    geo, region = rng.integers(0, 9, n), rng.integers(0, 20, n)
    company = (rng.random(n) < 0.05).astype(np.int64)
    passing = {"high": (geo == 1) & (company == 0), "low": (geo == 1) & (region == 1)}
    gen = torch.Generator(device="cuda").manual_seed(0)
    items = torch.randn((n, DIM), generator=gen, device="cuda", dtype=torch.float16)
    for name, mask1 in passing.items():
      for b in (1, 16):
        q = torch.from_numpy(queries[:b]).to("cuda", torch.float16)
        m = torch.from_numpy(np.broadcast_to(mask1, (b, n)).copy()).to("cuda")

        def v1():
          s = (q @ items.T).float().masked_fill_(~m, float("-inf"))
          torch.topk(s, K, dim=1)
          torch.cuda.synchronize()

        def v2():
          for i in range(b):
            idx = torch.nonzero(m[i]).squeeze(1)
            s = (items.index_select(0, idx) @ q[i]).float()
            torch.topk(s, min(K, s.numel()))
          torch.cuda.synchronize()

        out[f"{n}|{name}|{b}"] = {"v1": timed(v1), "v2": timed(v2)}
        print(n, name, b, out[f"{n}|{name}|{b}"], flush=True)
    del items
    torch.cuda.empty_cache()
  with open(args.out, "w") as fh:
    json.dump(out, fh)


if __name__ == "__main__":
  main()
