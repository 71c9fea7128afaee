"""Tiny driver for Nsight Compute: one masked top-k (B=64, 100 % pass) and one filter_mask at N=10M."""
import sys
import torch
sys.path.insert(0, "bench/gpu")
from harness import Lib, programs_for  # noqa: E402

lib = Lib(sys.argv[1])
n, d = 10_000_000, 128
items = torch.randn(n, d, device="cuda", dtype=torch.float16)
bits = torch.full((n, 1), 0x7fffffff, dtype=torch.int32, device="cuda")
prog = torch.from_numpy(programs_for(0.001, 64)).cuda()
mask, cnt = lib.filter_mask(bits, prog)
q = torch.randn(64, d, device="cuda")
full = torch.full_like(mask, -1)
full[:, -1] = (1 << (n % 32)) - 1 if n % 32 else -1
lib.topk(q, items, full, 100, 0)
torch.cuda.synchronize()
