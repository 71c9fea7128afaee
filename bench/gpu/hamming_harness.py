"""GPU correctness + benchmark harness for the LinrHammingTopK CUDA kernel
(custom_ops/quantization/hamming_gpu.cu.h), no TensorFlow.

Loads liblinr_cuda.so (custom_ops/cuda/build.sh) through ctypes and drives
`linr_hamming_topk_variant` with PyTorch tensors, for each scan kernel:
  cuda-core (variant 1): XOR + POPC kernels (ScanSingle / ScanGroup);
  b1 (variant 2): tensor cores, mma.sync m16n8k128 .b1 and.popc (B >= 16, Wc 2/4/8);
  i8 (variant 3): tensor cores, mma.sync m16n8k32 s8.u8 on bits expanded to
                  bytes (B >= 16, Wc 2/4/8).
(`--variants` picks them; default all three.)

1. Self-check (small sizes, each variant, stops at nothing): for every
   failing case it prints the first differing query / rank with the expected
   and returned (index, score) and the reference score of the returned index,
   which tells a scoring error (wrong score) from a selection error (right
   scores, wrong items).
2. Correctness: bit-exact (scores, indices, count, padding) against a
   brute-force torch reference (popcount by byte lookup table, rank key = score
   * 2^32 + (2^32 - 1 - index), i.e. score descending, ties by smaller index)
   over N not a multiple of 32, Wc in {1, 2, 3, 4, 5, 8, 16}, B in {1, 8, 16,
   64, 70, 256}, k in {1, 100, 1000, 4096}, pass rates 100 % / 10 % / 0.1 % /
   0 %, massive ties, k > N, no mask, misaligned codes (generic path), scores
   increasing with the index (candidate buffer overflow -> safe rerun) and
   multi-segment sizes; the B >= 16 cases run once per variant.
3. Peak of each tensor-core instruction, measured in this run
   (linr_hamming_mma_peak: independent mma.sync chains in registers), in
   mma/s and TOPS (b1: 2 x 16 x 8 x 128 ops per mma, i8: 2 x 16 x 8 x 32).
4. Timing: CUDA events (warm-up, median) of one call, codes generated on the
   GPU, N = 1B and 100M x 128-bit codes, B in {1, 8, 16, 64, 256}, pass 100 % /
   10 %, k = 100. Floors per row: HBM floor = (mask words + the 32-byte sectors
   of codes holding an item some query lets pass) / read bandwidth measured in
   this run; compute floor = mma.sync the tensor-core scan issues / the
   measured peak rate; floor = the larger. PyTorch anchor (chunked XOR + SWAR
   popcount + masked topk) in the same process where affordable.

  python3 bench/gpu/hamming_harness.py --lib build/liblinr_cuda.so --out $OUT [--quick]
      [--correctness-only] [--variants cuda-core,b1,i8]

The JSON (gpu_hamming.json) carries `summary` (b64_1b_full_ms,
b64_1b_10pct_ms: the fastest variant at N = 1B, Wc = 4, B = 64, k = 100;
top50m_1b_64bit_ms: null here, measured by the large-k harness).
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEV, I32, I64, SZ, VP, arg_parser, copy_bandwidth, load_lib, log,  # noqa: E402
                    pack_bits, read_bandwidth, stream, timeit_stats, workspace, write_results)

I32_MIN, I32_MAX = -2**31, 2**31 - 1


VARIANTS = {"cuda-core": 1, "b1": 2, "i8": 3}
VARIANT_NAMES = {0: "auto", 1: "cuda-core", 2: "b1", 3: "i8"}


class Lib:
    def __init__(self, path):
        self.L = load_lib(path, {
            "linr_hamming_topk_workspace_bytes": ([I64, I64, I64], SZ),
            "linr_hamming_topk_variant": ([VP, VP, VP, I64, I64, I64, I64, VP, SZ, VP, VP, VP, VP,
                                           I32], I32),
            "linr_hamming_mma_variant": ([I32, I64, I64], I32),
            "linr_hamming_mma_peak": ([I32, I32, I32, I32, VP, VP], I32),
            "linr_hamming_mma_per_tile": ([I32, I32, I32], I64),
            "linr_hamming_mma_group": ([I32, I32], I32),
        })
        self.ws = {}

    def ran(self, variant, b, wc):
        """Name of the scan kernel a call (variant, B, Wc) runs."""
        return VARIANT_NAMES[self.L.linr_hamming_mma_variant(variant, b, wc)]

    def topk(self, q, codes, mask, k, out=None, variant=1):
        """q int32 [B, Wc], codes int32 [N, Wc] (any strides of rows ok if
        contiguous), mask int32 [B, ceil(N/32)] or None."""
        b, wc = q.shape
        n = codes.shape[0]
        ws = workspace(self.ws, 0, self.L.linr_hamming_topk_workspace_bytes(b, n, k))
        if out is None:
            out = (torch.full((b, k), 12345.0, dtype=torch.float32, device=DEV),  # poisoned
                   torch.full((b, k), -7, dtype=torch.int32, device=DEV),
                   torch.full((b,), -7, dtype=torch.int32, device=DEV))
        s, i, c = out
        rc = self.L.linr_hamming_topk_variant(q.data_ptr(), codes.data_ptr(),
                                              None if mask is None else mask.data_ptr(), b, n, wc,
                                              k, ws.data_ptr(), ws.numel(), s.data_ptr(),
                                              i.data_ptr(), c.data_ptr(), stream(), variant)
        assert rc == 0, f"linr_hamming_topk_variant error {rc} (variant {variant})"
        return s, i, c


# ---------------------------------------------------------------------------
# Masks (pack_bits: common.py).
def random_mask(b, n, rate, gen, chunk_bits=1 << 27):
    """int32 [B, ceil(N/32)] with each bit < N set with probability `rate`
    (Bernoulli, generated in chunks to bound memory)."""
    m = (n + 31) // 32
    if rate >= 1.0:
        mask = torch.full((b, m), -1, dtype=torch.int32, device=DEV)
    else:
        mask = torch.empty((b, m), dtype=torch.int32, device=DEV)
        cw = max(1, chunk_bits // 32)
        for r in range(b):
            for w0 in range(0, m, cw):
                w1 = min(m, w0 + cw)
                bits = torch.rand((1, (w1 - w0) * 32), generator=gen, device=DEV) < rate
                mask[r, w0:w1] = pack_bits(bits)[0]
    return mask


# ---------------------------------------------------------------------------
# Reference: popcount by byte lookup table, rank key score*2^32 + (2^32-1-i).
_LUT = None


def popcount_bytes(x_u8):
    global _LUT
    if _LUT is None:
        _LUT = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int32, device=DEV)
    return _LUT[x_u8.long()]


def ref_scores(q, codes):
    """int64 [B, N] matching bits."""
    b, wc = q.shape
    cb = codes.contiguous().view(torch.uint8).view(codes.shape[0], wc * 4)
    qb = q.contiguous().view(torch.uint8).view(b, wc * 4)
    out = torch.empty((b, codes.shape[0]), dtype=torch.int64, device=DEV)
    for r in range(b):
        out[r] = 32 * wc - popcount_bytes(cb ^ qb[r]).sum(1)
    return out


def reference(q, codes, passes, k):
    n = codes.shape[0]
    b = q.shape[0]
    s = ref_scores(q, codes)
    idx = torch.arange(n, device=DEV, dtype=torch.int64)
    key = s * 2**32 + (2**32 - 1 - idx)
    key = torch.where(passes, key, torch.full_like(key, -1))
    kk = min(k, n)
    vals = torch.full((b, k), -float("inf"), dtype=torch.float32, device=DEV)
    inds = torch.full((b, k), -1, dtype=torch.int32, device=DEV)
    cnt = passes.sum(1).clamp(max=k).to(torch.int32)
    if kk > 0:
        top, _ = torch.topk(key, kk, dim=1, largest=True, sorted=True)
        valid = torch.arange(kk, device=DEV).view(1, -1) < cnt.view(-1, 1)
        sc = (top >> 32).to(torch.float32)
        ix = (2**32 - 1 - (top & 0xFFFFFFFF)).to(torch.int32)
        vals[:, :kk] = torch.where(valid, sc, vals[:, :kk])
        inds[:, :kk] = torch.where(valid, ix, inds[:, :kk])
    return vals, inds, cnt


def rand_codes(gen, n, wc, few=False):
    if few:  # codes from a tiny pool with 1-bit flips: many exact ties
        pool = torch.randint(I32_MIN, I32_MAX, (4, wc), generator=gen, device=DEV, dtype=torch.int32)
        pick = torch.randint(0, 4, (n,), generator=gen, device=DEV)
        flip = (torch.randint(0, 3, (n, wc), generator=gen, device=DEV) == 0).to(torch.int32)
        return pool[pick] ^ flip
    return torch.randint(I32_MIN, I32_MAX, (n, wc), generator=gen, device=DEV, dtype=torch.int32)


def diagnose(q, codes, passes, k, got, want):
    """One line on the first query whose result differs: rank, expected and
    returned (index, score), the reference score of the returned index and
    whether that index passes."""
    gs, gi, gc = got
    ws, wi, wc = want
    for r in range(q.shape[0]):
        if torch.equal(gs[r], ws[r]) and torch.equal(gi[r], wi[r]) and gc[r] == wc[r]:
            continue
        bad = ((gs[r] != ws[r]) | (gi[r] != wi[r])).nonzero()
        j = int(bad[0]) if len(bad) else 0
        idx = int(gi[r, j])
        line = (f"query {r}: count got {int(gc[r])} want {int(wc[r])}; rank {j}: got (index {idx}, "
                f"score {float(gs[r, j]):g}) want (index {int(wi[r, j])}, score {float(ws[r, j]):g})")
        if 0 <= idx < codes.shape[0]:
            ref = int(ref_scores(q[r:r + 1], codes[idx:idx + 1])[0, 0])
            line += f"; reference score of index {idx} = {ref}, passes = {bool(passes[r, idx])}"
            if ref != float(gs[r, j]):
                line += f" (SCORE off by {float(gs[r, j]) - ref:+g}: scoring error)"
            elif not bool(passes[r, idx]):
                line += " (item does not pass: mask-bit error)"
            else:
                line += " (score right: selection/ordering error)"
        nbad = sum(int(not (torch.equal(gs[x], ws[x]) and torch.equal(gi[x], wi[x])))
                   for x in range(q.shape[0]))
        return line + f"; {nbad} of {q.shape[0]} queries differ"
    return "no differing query"


def check(lib, name, q, codes, passes, k, use_mask=True, mask=None, variant=1):
    try:
        if use_mask and mask is None:
            mask = pack_bits(passes)
        got = lib.topk(q, codes, mask if use_mask else None, k, variant=variant)
        torch.cuda.synchronize()
        want = reference(q, codes, passes, k)
        ok = all(torch.equal(g, w) for g, w in zip(got, want))
        log(f"  [{'PASS' if ok else 'FAIL'}] {name}" +
            ("" if ok else ": " + diagnose(q, codes, passes, k, got, want)))
        return ok
    except Exception as e:  # keep going, report
        log(f"  [FAIL] {name}: exception {e!r}")
        return False


def variant_list(lib, variants, b, wc):
    """(name suffix, variant id) for each requested variant that runs its own
    kernel at (B, Wc); B < 8 or other widths run the CUDA-core kernels once."""
    out, seen = [], set()
    for v in variants:
        ran = lib.ran(VARIANTS[v], b, wc)
        if ran in seen:
            continue
        seen.add(ran)
        out.append((f" [{ran}]", VARIANTS[v]))
    return out


def self_check(lib, variants):
    """Small cases first: one line per case and variant, with a diagnosis."""
    log("== self-check (small sizes; FAIL lines name the first differing query/rank) ==")
    g = torch.Generator(device=DEV).manual_seed(3)
    res = {}
    for wc in (2, 4, 8):
        for b in (8, 16, 64):
            for n, k, rate in ((64, 64, 1.0), (1000, 1000, 1.0), (1000, 10, 0.5), (5003, 100, 0.1)):
                codes = rand_codes(g, n, wc)
                q = rand_codes(g, b, wc)
                passes = torch.rand(b, n, generator=g, device=DEV) < rate
                for suffix, v in variant_list(lib, variants, b, wc):
                    nm = f"self-check N={n} Wc={wc} B={b} k={k} pass={rate*100:g}%{suffix}"
                    res[nm] = check(lib, nm, q, codes, passes, k, variant=v)
    # No mask, and a query equal to an item (score = all bits).
    codes = rand_codes(g, 777, 4)
    q = codes[:16].clone()
    for suffix, v in variant_list(lib, variants, 16, 4):
        nm = f"self-check no mask, queries = items 0..15, N=777 Wc=4 B=16 k=5{suffix}"
        res[nm] = check(lib, nm, q, codes, torch.ones(16, 777, dtype=torch.bool, device=DEV), 5,
                        use_mask=False, variant=v)
    return res


def correctness(lib, quick, variants):
    log("== correctness (bit-exact vs torch brute force) ==")
    g = torch.Generator(device=DEV).manual_seed(11)
    res = {}

    def rates_mask(b, n, rates):
        r = torch.tensor([rates[i % len(rates)] for i in range(b)], device=DEV).view(b, 1)
        return torch.rand(b, n, generator=g, device=DEV) < r

    rates = [1.0, 0.1, 0.001, 0.0]
    n = 100_003
    for wc in (1, 2, 3, 4, 5, 8, 16):
        for b in (1, 8, 64):
            if quick and b == 64 and wc not in (4,):
                continue
            for k in (1, 100, 1000):
                if b == 64 and k == 1 and wc != 4:
                    continue
                few = (wc + b + k) % 2 == 0
                codes = rand_codes(g, n, wc, few)
                q = rand_codes(g, b, wc, few)
                if b == 1:
                    for r in rates:
                        nm = f"N={n} Wc={wc} B=1 k={k} pass={r*100:g}% ties={few}"
                        res[nm] = check(lib, nm, q, codes, rates_mask(1, n, [r]), k)
                else:
                    passes = rates_mask(b, n, rates)
                    for suffix, v in variant_list(lib, variants, b, wc):
                        nm = f"N={n} Wc={wc} B={b} k={k} pass=100/10/0.1/0% ties={few}{suffix}"
                        res[nm] = check(lib, nm, q, codes, passes, k, variant=v)
    # The tensor-core widths at the batch sizes of issue 13 (B = 16 / 70 / 256:
    # a partial m-tile, a partial second query group, four groups), k up to 4096.
    for wc in (2, 4, 8):
        for b, k in ((16, 100), (70, 1000), (256, 100), (64, 4096)):
            if quick and b == 256 and wc != 4:
                continue
            few = (wc + b) % 3 == 0
            codes = rand_codes(g, n, wc, few)
            q = rand_codes(g, b, wc, few)
            passes = rates_mask(b, n, rates)
            for suffix, v in variant_list(lib, variants, b, wc):
                nm = f"N={n} Wc={wc} B={b} k={k} pass=100/10/0.1/0% ties={few}{suffix}"
                res[nm] = check(lib, nm, q, codes, passes, k, variant=v)
    # No mask (NULL): every item passes.
    for b in (1, 8, 64):
        codes = rand_codes(g, 5000, 4, True)
        q = rand_codes(g, b, 4, True)
        for suffix, v in variant_list(lib, variants, b, 4):
            nm = f"no mask (NULL) N=5000 Wc=4 B={b} k=100{suffix}"
            res[nm] = check(lib, nm, q, codes, torch.ones(b, 5000, dtype=torch.bool, device=DEV),
                            100, use_mask=False, variant=v)
    # Bits past N set in the mask must be ignored.
    for b in (3, 9):
        codes = rand_codes(g, 37, 4)
        q = rand_codes(g, b, 4)
        m = torch.full((b, 2), -1, dtype=torch.int32, device=DEV)
        for suffix, v in variant_list(lib, variants, b, 4):
            nm = f"mask bits past N ignored, N=37 B={b} k=50{suffix}"
            res[nm] = check(lib, nm, q, codes, torch.ones(b, 37, dtype=torch.bool, device=DEV), 50,
                            mask=m, variant=v)
    # k > N, tiny N.
    for n_small in (1, 31, 33):
        for b in (2, 8):
            codes = rand_codes(g, n_small, 2)
            q = rand_codes(g, b, 2)
            passes = rates_mask(b, n_small, [1.0, 0.5])
            for suffix, v in variant_list(lib, variants, b, 2):
                nm = f"k=100 > N={n_small} Wc=2 B={b}{suffix}"
                res[nm] = check(lib, nm, q, codes, passes, 100, variant=v)
    # Every code identical: all scores tie -> indices 0..k-1 of the passing ones.
    codes = rand_codes(g, 1, 4).repeat(300_000, 1)
    for b in (8, 64):
        q = rand_codes(g, b, 4)
        passes = rates_mask(b, 300_000, [1.0, 0.1, 0.001, 0.0])
        for suffix, v in variant_list(lib, variants, b, 4):
            nm = f"all codes identical N=300000 B={b} k=1000{suffix}"
            res[nm] = check(lib, nm, q, codes, passes, 1000, variant=v)
    # Misaligned codes (row pointer not 16-byte aligned -> generic path).
    flat = rand_codes(g, 20_001 * 4 + 1, 1).view(-1)
    codes = flat[1:1 + 20_001 * 4].view(20_001, 4)
    for b in (3, 16):
        q = rand_codes(g, b, 4)
        passes = rates_mask(b, 20_001, [1.0, 0.1, 0.5])
        for suffix, v in variant_list(lib, variants, b, 0):
            nm = f"misaligned Wc=4 codes (generic path) B={b} k=100{suffix}"
            res[nm] = check(lib, nm, q, codes, passes, 100, variant=v)
    # Scores increasing with the index: the threshold lags -> buffer overflow
    # -> safe rerun.
    na = 2_000_000 if not quick else 300_000
    s_target = (torch.arange(na, device=DEV, dtype=torch.int64) * 129) // na  # 0..128
    ones = 128 - s_target  # bits set -> distance to the zero query
    words = []
    for w in range(4):
        c = (ones - 32 * w).clamp(0, 32)
        v = torch.where(c == 32, torch.full_like(c, 2**32 - 1), (torch.ones_like(c) << c.clamp(max=31)) - 1)
        words.append(torch.where(v >= 2**31, v - 2**32, v))
    codes = torch.stack(words, 1).to(torch.int32).contiguous()
    for b in (2, 8):
        q = torch.zeros((b, 4), dtype=torch.int32, device=DEV)
        for k in (100, 1000):
            passes = rates_mask(b, na, [1.0, 0.5])
            for suffix, v in variant_list(lib, variants, b, 4):
                nm = f"scores increasing with index (overflow -> safe rerun) N={na} B={b} k={k}{suffix}"
                res[nm] = check(lib, nm, q, codes, passes, k, variant=v)
    # Several segments and prunes at a larger N.
    nb = 3_000_007 if not quick else 500_003
    for wc in (4, 2):
        codes = rand_codes(g, nb, wc)
        for b, k in ((1, 1000), (8, 100), (70, 10), (64, 4096)):
            if wc == 2 and b == 1:
                continue
            q = rand_codes(g, b, wc)
            passes = rates_mask(b, nb, [1.0, 0.1, 0.01, 0.001, 0.3])
            for suffix, v in variant_list(lib, variants, b, wc):
                nm = f"N={nb} Wc={wc} B={b} k={k} mixed pass rates (multi-segment){suffix}"
                res[nm] = check(lib, nm, q, codes, passes, k, variant=v)
        del codes
    return res


# ---------------------------------------------------------------------------
# Timing (timeit_stats: common.py).
def measure_bandwidth(codes):
    flat = codes.view(-1)[: min(codes.numel(), 1024**3)].view(torch.float32)  # <= 4 GB
    return copy_bandwidth(), read_bandwidth(flat, 2, 10)


def union_stats(mask, n, wc):
    """(32-byte sectors of codes holding >= 1 item that passes for some query,
    items passing for some query); mask None -> every item."""
    sector_items = max(1, 8 // wc)  # items per 32-byte sector (wc <= 8)
    if mask is None:
        return (n + sector_items - 1) // sector_items * max(1, wc // 8), n
    b, m = mask.shape
    sectors = items = 0
    cw = 1 << 22
    shifts = torch.arange(0, 32, sector_items, device=DEV)
    all_shifts = torch.arange(32, device=DEV)
    for w0 in range(0, m, cw):
        u32 = mask[0, w0:w0 + cw].clone()
        for r in range(1, b):
            u32 |= mask[r, w0:w0 + cw]
        u = u32.to(torch.int64) & 0xFFFFFFFF
        items += int(((u.unsqueeze(-1) >> all_shifts) & 1).sum())
        grp = u.clone()
        for j in range(1, sector_items):
            grp |= u >> j
        sectors += int(((grp.unsqueeze(-1) >> shifts) & 1).sum())
    if wc > 8:
        sectors = items * (wc // 8)
    return sectors, items


def anchor_topk(q, codes, mask, k, budget_elems=1 << 28):
    """PyTorch anchor: chunked XOR + SWAR popcount + masked topk + merge."""
    b, wc = q.shape
    n = codes.shape[0]
    chunk = max(32, (budget_elems // (b * wc)) // 32 * 32)
    best_v = best_i = None
    shifts = torch.arange(32, device=DEV)
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        x = codes[c0:c1].unsqueeze(0) ^ q.unsqueeze(1)
        x = x - ((x >> 1) & 0x55555555)
        x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
        x = (x + (x >> 4)) & 0x0F0F0F0F
        x = (x * 0x01010101) >> 24
        s = 32 * wc - x.sum(-1, dtype=torch.int32)
        if mask is not None:
            mw = mask[:, c0 // 32:(c1 + 31) // 32]
            p = ((mw.unsqueeze(-1) >> shifts) & 1).view(b, -1)[:, :c1 - c0].bool()
            s = torch.where(p, s, torch.full_like(s, -1))
        v, i = torch.topk(s, min(k, c1 - c0), dim=1)
        i = i + c0
        if best_v is None:
            best_v, best_i = v, i
        else:
            v2, j = torch.topk(torch.cat([best_v, v], 1), min(k, best_v.shape[1] + v.shape[1]), dim=1)
            best_i = torch.gather(torch.cat([best_i, i], 1), 1, j)
            best_v = v2
    return best_v, best_i


# ---------------------------------------------------------------------------
# Tensor-core peaks (measured in this run).
MMA_OPS = {"b1": 2 * 16 * 8 * 128, "i8": 2 * 16 * 8 * 32}  # ops per mma.sync
MMA_NAME = {"b1": "mma.sync.m16n8k128.row.col.s32.b1.b1.s32.and.popc",
            "i8": "mma.sync.m16n8k32.row.col.s32.s8.u8.s32"}


def mma_peaks(lib, variants):
    """{variant: dict(mma_per_s, tops, ...)}: the best of a few launch shapes
    of linr_hamming_mma_peak (8 independent accumulator chains per warp)."""
    log("== tensor-core peak (microbenchmark of the scan's mma instruction, this run) ==")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    out = {}
    for name in ("b1", "i8"):
        if name not in variants:
            continue
        best = None
        for blocks_per_sm, threads in ((4, 256), (8, 256), (2, 512)):
            blocks, iters = sms * blocks_per_sm, 2048
            sink = torch.empty(blocks * threads, dtype=torch.int32, device=DEV)
            run = lambda: lib.L.linr_hamming_mma_peak(VARIANTS[name], blocks, threads, iters,
                                                      sink.data_ptr(), stream())
            rc = run()
            assert rc == 0, f"linr_hamming_mma_peak error {rc}"
            t = timeit_stats(run, 2, 5)[0]
            mmas = blocks * threads // 32 * iters * 8
            rate = mmas / (t * 1e-3)
            if best is None or rate > best["mma_per_s"]:
                best = dict(instruction=MMA_NAME[name], mma_per_s=rate,
                            tops=rate * MMA_OPS[name] / 1e12, ops_per_mma=MMA_OPS[name],
                            blocks=blocks, threads=threads, iters=iters, ms=t)
        out[name] = best
        log(f"  {name}: {best['instruction']}: {best['mma_per_s']/1e12:.3f} T mma/s = "
            f"{best['tops']:.0f} TOPS ({best['mma_per_s']/sms/1.98e9:.2f} mma/clk/SM at 1.98 GHz; "
            f"{best['blocks']} x {best['threads']} threads)")
    return out


def compute_floor_ms(lib, variant, n, b, wc, peaks):
    """Time the variant's mma.sync alone would take at the measured peak
    (every 8-item tile scored; tiles no query wants are skipped, ignored here)."""
    if variant not in peaks or lib.ran(VARIANTS[variant], b, wc) != variant:
        return None, None
    grp = lib.L.linr_hamming_mma_group(VARIANTS[variant], wc)
    mmas = 0
    for q0 in range(0, b, grp):
        mt = (min(grp, b - q0) + 15) // 16
        mmas += lib.L.linr_hamming_mma_per_tile(VARIANTS[variant], wc, mt)
    mmas *= (n + 7) // 8
    return mmas / peaks[variant]["mma_per_s"] * 1e3, mmas


def bench_mask(b, n, rate, gen, distinct=32):
    """Pass masks for timing: rows beyond `distinct` are rotations of the first
    ones by distinct word offsets (generating 256 x 1B Bernoulli bits is slow)."""
    if rate >= 1.0 or b <= distinct:
        return random_mask(b, n, rate, gen)
    base = random_mask(distinct, n, rate, gen)
    m = base.shape[1]
    mask = torch.empty((b, m), dtype=torch.int32, device=DEV)
    mask[:distinct] = base
    for r in range(distinct, b):
        mask[r] = torch.roll(base[r % distinct], shifts=(r * 7919) % m)
    if n % 32:  # bits past N stay clear
        mask[:, -1] &= (1 << (n % 32)) - 1
    del base
    return mask


def bench(lib, configs, rows, budget, t0, bw_cache, variants, peaks):
    g = torch.Generator(device=DEV).manual_seed(5)
    for n, wc, plan in configs:
        if time.time() - t0 > budget:
            log(f"time budget reached before N={n:,}")
            return
        log(f"== benchmark N={n:,} x {32*wc}-bit codes ({n*wc*4/1e9:.1f} GB) ==")
        torch.cuda.empty_cache()
        codes = torch.randint(I32_MIN, I32_MAX, (n, wc), generator=g, device=DEV, dtype=torch.int32)
        copy_bw, read_bw = measure_bandwidth(codes)
        bw = max(copy_bw, read_bw)
        bw_cache.append(dict(N=n, copy_bw=copy_bw, read_bw=read_bw))
        log(f"  bandwidth: D2D copy {copy_bw/1e12:.2f} TB/s (read+write), read-only sum {read_bw/1e12:.2f} TB/s"
            f" -> floor uses {bw/1e12:.2f} TB/s")
        m = (n + 31) // 32
        b1_ms = {}
        for b, rate, ks, anchor in plan:
            if time.time() - t0 > budget:
                log("  time budget reached; stopping")
                return
            q = torch.randint(I32_MIN, I32_MAX, (b, wc), generator=g, device=DEV, dtype=torch.int32)
            mask = None if rate is None else bench_mask(b, n, rate, g)
            sec, union_items = union_stats(mask, n, wc)
            code_bytes = sec * 32
            mask_bytes = 0 if mask is None else b * m * 4
            hbm_ms = (code_bytes + mask_bytes) / bw * 1e3
            full_ms = (n * wc * 4 + mask_bytes) / bw * 1e3
            for k in ks:
                out = (torch.empty((b, k), dtype=torch.float32, device=DEV),
                       torch.empty((b, k), dtype=torch.int32, device=DEV),
                       torch.empty((b,), dtype=torch.int32, device=DEV))
                ref_scores_row = None
                for suffix, v in variant_list(lib, variants, b, wc):
                    if time.time() - t0 > budget:
                        log("  time budget reached; stopping")
                        return
                    vname = lib.ran(v, b, wc)
                    cf_ms, mmas = compute_floor_ms(lib, vname, n, b, wc, peaks)
                    floor_ms = max(hbm_ms, cf_ms or 0.0)
                    est = full_ms * (1 if (b == 1 or vname != "cuda-core") else b / 4)
                    reps = 10 if est < 50 else 5
                    t_med, t_min = timeit_stats(lambda: lib.topk(q, codes, mask, k, out, variant=v), 2, reps)
                    s_, i_, c_ = out
                    if ref_scores_row is None:  # the first variant's scores: the others must agree
                        ref_scores_row = s_.clone()
                        agree = None
                    else:
                        agree = bool(torch.equal(ref_scores_row, s_))
                    row = dict(N=n, bits=32 * wc, B=b, pass_rate=1.0 if rate is None else rate,
                               mask="none" if mask is None else "int32 [B, N/32]", k=k,
                               variant=vname, ms=t_med, ms_min=t_min, floor_ms=floor_ms,
                               hbm_floor_ms=hbm_ms, compute_floor_ms=cf_ms, mma_count=mmas,
                               full_scan_floor_ms=full_ms, vs_floor=t_med / floor_ms,
                               vs_hbm_floor=t_med / hbm_ms, code_bytes=code_bytes,
                               mask_bytes=mask_bytes, union_items=union_items, bw=bw,
                               device=torch.cuda.get_device_name())
                    if agree is not None:
                        row["scores_equal_first_variant"] = agree
                    if b == 1:
                        b1_ms[(rate, k)] = t_med
                    elif (rate, k) in b1_ms:
                        # Throughput of B queries in one call against B calls of B = 1.
                        row["throughput_vs_b1"] = b * b1_ms[(rate, k)] / t_med
                    rows.append(row)
                    tv = row.get("throughput_vs_b1")
                    log(f"  N={n:>13,} B={b:>3} pass={row['pass_rate']*100:>6.2f}% k={k:>4} {vname:>9} | "
                        f"{t_med:8.3f} ms (min {t_min:.3f}) | HBM floor {hbm_ms:7.3f}"
                        f" | compute floor {'-' if cf_ms is None else f'{cf_ms:7.3f}'}"
                        f" -> {t_med/floor_ms:5.2f}x floor"
                        + ("" if tv is None else f" | throughput {tv:5.2f}x B=1")
                        + ("" if agree is None else f" | scores = first variant: {agree}"))
                if anchor:
                    try:
                        av, ai = anchor_topk(q, codes, mask, k)
                        torch.cuda.synchronize()
                        s_, i_, c_ = out
                        cnt = c_.long()
                        agree = all(torch.equal(s_[r, :cnt[r]].to(torch.int32), av[r, :cnt[r]].to(torch.int32))
                                    for r in range(b))
                        a_ms, _ = timeit_stats(lambda: anchor_topk(q, codes, mask, k), 1,
                                               3 if b * n <= 64 * 100_000_000 else 1)
                        for r in rows:
                            if r["N"] == n and r["B"] == b and r["k"] == k and r["pass_rate"] == (
                                    1.0 if rate is None else rate) and r["mask"] == (
                                    "none" if mask is None else "int32 [B, N/32]"):
                                r["anchor_ms"] = a_ms
                                r["anchor_scores_agree"] = bool(agree)
                                r["vs_anchor"] = a_ms / r["ms"]
                        log(f"  PyTorch anchor (XOR + SWAR popcount + topk): {a_ms:.2f} ms "
                            f"(scores agree: {agree})")
                    except torch.OutOfMemoryError:
                        log("  PyTorch anchor: out of memory")
                    torch.cuda.empty_cache()
            del mask
            torch.cuda.empty_cache()
        del codes
        torch.cuda.empty_cache()


def summary(rows):
    """The issue-13 figures: the fastest variant at 1B x 128-bit, B = 64, k = 100."""
    def best(n, b, rate):
        c = [r for r in rows if r["N"] == n and r["bits"] == 128 and r["B"] == b and r["k"] == 100
             and r["pass_rate"] == rate and r["mask"] != "none"]
        return min(c, key=lambda r: r["ms"]) if c else None

    out = {}
    for key, n, b, rate in (("b64_1b_full_ms", 10**9, 64, 1.0), ("b64_1b_10pct_ms", 10**9, 64, 0.1)):
        r = best(n, b, rate)
        out[key] = None if r is None else r["ms"]
        out[key.replace("_ms", "_variant")] = None if r is None else r["variant"]
        out[key.replace("_ms", "_vs_floor")] = None if r is None else r["vs_floor"]
    for rate, tag in ((1.0, "full"), (0.1, "10pct")):
        r1, r64 = best(10**9, 1, rate), best(10**9, 64, rate)
        out[f"b64_vs_b1_throughput_1b_{tag}"] = (
            None if r1 is None or r64 is None else 64 * r1["ms"] / r64["ms"])
    out["top50m_1b_64bit_ms"] = None  # the large-k path's harness measures it; keep it when merging
    out["goals"] = "b64_1b_full_ms <= 26, b64_1b_10pct_ms <= 11, b64_vs_b1_throughput >= 10"
    return out


def merge_into(path, res):
    """Merges this run into an existing gpu_hamming.json: rows of the same
    (N, bits, B, pass rate, mask, k, kernel) are replaced, other rows kept;
    summary keys this run measured (not null) replace the old ones, the others
    (e.g. top50m_1b_64bit_ms from the large-k harness) stay."""
    old = {}
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)

    def key(r):
        return (r.get("N"), r.get("bits"), r.get("B"), r.get("pass_rate"), r.get("mask"),
                r.get("k"), r.get("variant", "cuda-core"))

    new_keys = {key(r) for r in res["rows"]}
    merged = dict(old)
    merged.update({k: v for k, v in res.items() if k not in ("rows", "summary", "correctness")})
    merged["rows"] = [r for r in old.get("rows", []) if key(r) not in new_keys] + res["rows"]
    merged["correctness"] = {**old.get("correctness", {}), **res.get("correctness", {})}
    summ = dict(old.get("summary") or {})
    summ.update({k: v for k, v in res["summary"].items() if v is not None or k not in summ})
    merged["summary"] = summ
    with open(path, "w") as f:
        json.dump(merged, f, indent=1)
    log(f"merged into {path}: {len(merged['rows'])} rows, summary {json.dumps(summ)}")


def main():
    ap = arg_parser(budget=480.0)
    ap.add_argument("--merge-into", default=None,
                    help="also merge the results into this gpu_hamming.json (see merge_into)")
    ap.add_argument("--variants", default="cuda-core,b1,i8",
                    help="scan kernels to check and time (cuda-core, b1, i8)")
    ap.add_argument("--skip-correctness", action="store_true", help="timing only")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        assert v in VARIANTS, f"unknown variant {v!r} (cuda-core, b1, i8)"
    t0 = time.time()
    lib = Lib(args.lib)
    name = torch.cuda.get_device_name()
    log(f"device: {name}; torch {torch.__version__}; variants {variants}")
    res = dict(device=name, torch=torch.__version__, variants=variants)
    corr = {}
    if not args.skip_correctness:
        corr.update(self_check(lib, variants))
        log(f"self-check: {sum(corr.values())}/{len(corr)} PASS ({time.time()-t0:.1f} s)")
        corr.update(correctness(lib, args.quick, variants))
        log(f"correctness: {sum(corr.values())}/{len(corr)} PASS ({time.time()-t0:.1f} s)")
        for v in variants:
            sub = {k: ok for k, ok in corr.items() if k.endswith(f"[{v}]")}
            if sub:
                log(f"  variant {v}: {sum(sub.values())}/{len(sub)} PASS")
    res["correctness"] = corr
    rows, bws = [], []
    res.update(rows=rows, bandwidth=bws)
    peaks = {}
    try:
        peaks = mma_peaks(lib, variants)
    except Exception as e:  # keep going
        log(f"peak microbenchmark failed: {e!r}")
    res["mma_peak"] = peaks
    if args.correctness_only:
        configs = []
    elif args.quick:
        configs = [(10_000_000, 4, [(1, 0.1, [100], True), (64, 0.1, [100], True),
                                    (64, 1.0, [100], False)])]
    else:
        # (B, pass rate (None: no mask), ks, anchor?)
        big = [(1, 1.0, [100], True), (1, 0.1, [100], False), (64, 1.0, [100], False),
               (64, 0.1, [100], False), (8, 1.0, [100], False), (8, 0.1, [100], False),
               (16, 1.0, [100], False), (16, 0.1, [100], False), (256, 1.0, [100], False),
               (256, 0.1, [100], False)]
        configs = [
            (1_000_000_000, 4, big),
            (100_000_000, 4, [(1, 1.0, [100], True), (1, 0.1, [100], False),
                              (64, 1.0, [100], True), (64, 0.1, [100], True),
                              (8, 0.1, [100], False), (16, 0.1, [100], False),
                              (256, 1.0, [100], False), (256, 0.1, [100], False)]),
        ]
    try:
        bench(lib, configs, rows, args.budget, t0, bws, variants, peaks)
    except Exception as e:  # keep what was measured
        import traceback
        log(f"benchmark aborted: {e!r}\n{traceback.format_exc()}")
        res["bench_error"] = repr(e)
    res["summary"] = summary(rows)
    res["seconds"] = time.time() - t0
    write_results(args.out, "gpu_hamming.json", res, "hamming_harness.log")
    if args.merge_into:
        merge_into(args.merge_into, res)
    ok = all(corr.values()) if corr else None
    log(f"total {time.time()-t0:.1f}s; correctness "
        f"{'not run' if ok is None else 'ALL PASS' if ok else 'FAILURES (grep FAIL above)'}")
    for v, p in peaks.items():
        log(f"peak {v}: {p['tops']:.0f} TOPS ({p['mma_per_s']/1e12:.3f} T mma/s) {p['instruction']}")
    log("| N | B | pass | k | kernel | ms | HBM floor ms | compute floor ms | x floor | "
        "throughput vs B=1 | anchor ms |")
    for r in rows:
        a = r.get("anchor_ms")
        cf = r.get("compute_floor_ms")
        tv = r.get("throughput_vs_b1")
        log(f"| {r['N']:,} | {r['B']} | {r['pass_rate']*100:g}%{' (no mask)' if r['mask']=='none' else ''} | "
            f"{r['k']} | {r['variant']} | {r['ms']:.3f} | {r['hbm_floor_ms']:.3f} | "
            f"{'-' if cf is None else f'{cf:.3f}'} | {r['vs_floor']:.2f} | "
            f"{'-' if tv is None else f'{tv:.1f}x'} | {'-' if a is None else f'{a:.2f}'} |")
    log("summary: " + json.dumps(res["summary"]))
    for key, goal in (("b64_1b_full", 26.0), ("b64_1b_10pct", 11.0)):
        rate = 1.0 if key.endswith("full") else 0.1
        c = [r for r in rows if r["N"] == 10**9 and r["B"] == 64 and r["k"] == 100
             and r["pass_rate"] == rate and r["mask"] != "none"]
        if not c:
            log(f"goal {key}_ms <= {goal:g}: not measured")
            continue
        for r in sorted(c, key=lambda r: r["ms"]):
            cf = r.get("compute_floor_ms")
            bound = ("memory (HBM floor is the larger)" if cf is None or r["hbm_floor_ms"] >= cf
                     else "tensor-core issue (compute floor is the larger)")
            verdict = "MET" if r["ms"] <= goal else f"MISSED by {r['ms'] / goal:.2f}x"
            log(f"goal {key}_ms <= {goal:g}: {r['variant']:>9} {r['ms']:.2f} ms -> {verdict}; "
                f"{r['vs_floor']:.2f}x max(HBM {r['hbm_floor_ms']:.2f}, compute "
                f"{'-' if cf is None else f'{cf:.2f}'}) ms; larger floor: {bound}")


if __name__ == "__main__":
    main()
