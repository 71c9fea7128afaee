"""GPU correctness + benchmark harness for the LinrHammingTopK CUDA kernel
(custom_ops/quantization/hamming_gpu.cu.h), no TensorFlow.

Loads liblinr_cuda.so (custom_ops/cuda/build.sh) through ctypes and drives
`linr_hamming_topk` with PyTorch tensors.

Correctness: bit-exact (scores, indices, count, padding) against a brute-force
torch reference (popcount by byte lookup table, rank key = score * 2^32 +
(2^32 - 1 - index), i.e. score descending, ties by smaller index) over N not a
multiple of 32, Wc in {1, 2, 3, 4, 5, 8, 16}, B in {1, 8, 64, 70}, k in {1, 100,
1000}, pass rates 100 % / 10 % / 0.1 % / 0 %, massive ties, k > N, no mask,
misaligned codes (generic path), scores increasing with the index (candidate
buffer overflow -> safe rerun) and multi-segment sizes.

Timing: CUDA events (warm-up, median) of one call, codes generated on the GPU;
HBM floor = (mask words + the 32-byte sectors of codes holding an item that
some query lets pass) / read bandwidth measured in this run; PyTorch anchor
(chunked XOR + SWAR popcount + masked topk) in the same process.

  python3 bench/gpu/hamming_harness.py --lib build/liblinr_cuda.so --out $OUT [--quick]
      [--correctness-only]
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEV, I32, I64, SZ, VP, arg_parser, copy_bandwidth, load_lib, log,  # noqa: E402
                    pack_bits, read_bandwidth, stream, timeit_stats, workspace, write_results)

I32_MIN, I32_MAX = -2**31, 2**31 - 1


class Lib:
    def __init__(self, path):
        self.L = load_lib(path, {
            "linr_hamming_topk_workspace_bytes": ([I64, I64, I64], SZ),
            "linr_hamming_topk": ([VP, VP, VP, I64, I64, I64, I64, VP, SZ, VP, VP, VP, VP], I32),
        })
        self.ws = {}

    def topk(self, q, codes, mask, k, out=None):
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
        rc = self.L.linr_hamming_topk(q.data_ptr(), codes.data_ptr(),
                                      None if mask is None else mask.data_ptr(), b, n, wc, k,
                                      ws.data_ptr(), ws.numel(), s.data_ptr(), i.data_ptr(),
                                      c.data_ptr(), stream())
        assert rc == 0, f"linr_hamming_topk error {rc}"
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


def check(lib, name, q, codes, passes, k, use_mask=True, mask=None):
    try:
        if use_mask and mask is None:
            mask = pack_bits(passes)
        got = lib.topk(q, codes, mask if use_mask else None, k)
        torch.cuda.synchronize()
        want = reference(q, codes, passes, k)
        ok = True
        msgs = []
        for nm, g, w in zip(("scores", "indices", "count"), got, want):
            if not torch.equal(g, w):
                ok = False
                bad = (g != w).nonzero()
                first = bad[0].tolist() if len(bad) else []
                msgs.append(f"{nm} differ at {len(bad)} places, first {first}: got "
                            f"{g[tuple(first)].item() if first else ''} want "
                            f"{w[tuple(first)].item() if first else ''}")
        log(f"  [{'PASS' if ok else 'FAIL'}] {name}" + ("" if ok else ": " + "; ".join(msgs)))
        return ok
    except Exception as e:  # keep going, report
        log(f"  [FAIL] {name}: exception {e!r}")
        return False


def correctness(lib, quick):
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
                    nm = f"N={n} Wc={wc} B={b} k={k} pass=100/10/0.1/0% ties={few}"
                    res[nm] = check(lib, nm, q, codes, rates_mask(b, n, rates), k)
    # No mask (NULL): every item passes.
    for b in (1, 8):
        codes = rand_codes(g, 5000, 4, True)
        q = rand_codes(g, b, 4, True)
        nm = f"no mask (NULL) N=5000 Wc=4 B={b} k=100"
        res[nm] = check(lib, nm, q, codes, torch.ones(b, 5000, dtype=torch.bool, device=DEV), 100,
                        use_mask=False)
    # Bits past N set in the mask must be ignored.
    codes = rand_codes(g, 37, 4)
    q = rand_codes(g, 3, 4)
    m = torch.full((3, 2), -1, dtype=torch.int32, device=DEV)
    res["mask bits past N ignored, N=37 k=50"] = check(
        lib, "mask bits past N ignored, N=37 k=50", q, codes,
        torch.ones(3, 37, dtype=torch.bool, device=DEV), 50, mask=m)
    # k > N, tiny N.
    for n_small in (1, 31, 33):
        codes = rand_codes(g, n_small, 2)
        q = rand_codes(g, 2, 2)
        nm = f"k=100 > N={n_small} Wc=2 B=2"
        res[nm] = check(lib, nm, q, codes, rates_mask(2, n_small, [1.0, 0.5]), 100)
    # Every code identical: all scores tie -> indices 0..k-1 of the passing ones.
    codes = rand_codes(g, 1, 4).repeat(300_000, 1)
    q = rand_codes(g, 8, 4)
    res["all codes identical N=300000 B=8 k=1000"] = check(
        lib, "all codes identical N=300000 B=8 k=1000", q, codes,
        rates_mask(8, 300_000, [1.0, 0.1, 0.001, 0.0]), 1000)
    # Misaligned codes (row pointer not 16-byte aligned -> generic path).
    flat = rand_codes(g, 20_001 * 4 + 1, 1).view(-1)
    codes = flat[1:1 + 20_001 * 4].view(20_001, 4)
    q = rand_codes(g, 3, 4)
    res["misaligned Wc=4 codes (generic path) B=3 k=100"] = check(
        lib, "misaligned Wc=4 codes (generic path) B=3 k=100", q, codes,
        rates_mask(3, 20_001, [1.0, 0.1, 0.5]), 100)
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
    q = torch.zeros((2, 4), dtype=torch.int32, device=DEV)
    for k in (100, 1000):
        nm = f"scores increasing with index (overflow -> safe rerun) N={na} k={k}"
        res[nm] = check(lib, nm, q, codes, rates_mask(2, na, [1.0, 0.5]), k)
    # Several segments and prunes at a larger N.
    nb = 3_000_007 if not quick else 500_003
    codes = rand_codes(g, nb, 4)
    for b, k in ((1, 1000), (8, 100), (70, 10)):
        q = rand_codes(g, b, 4)
        nm = f"N={nb} Wc=4 B={b} k={k} mixed pass rates (multi-segment)"
        res[nm] = check(lib, nm, q, codes, rates_mask(b, nb, [1.0, 0.1, 0.01, 0.001, 0.3]), k)
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


def bench(lib, configs, rows, budget, t0, bw_cache):
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
        for b, rate, ks, anchor in plan:
            if time.time() - t0 > budget:
                log("  time budget reached; stopping")
                return
            q = torch.randint(I32_MIN, I32_MAX, (b, wc), generator=g, device=DEV, dtype=torch.int32)
            mask = None if rate is None else random_mask(b, n, rate, g)
            sec, union_items = union_stats(mask, n, wc)
            code_bytes = sec * 32
            mask_bytes = 0 if mask is None else b * m * 4
            floor_ms = (code_bytes + mask_bytes) / bw * 1e3
            full_ms = (n * wc * 4 + mask_bytes) / bw * 1e3
            for k in ks:
                if time.time() - t0 > budget:
                    log("  time budget reached; stopping")
                    return
                out = (torch.empty((b, k), dtype=torch.float32, device=DEV),
                       torch.empty((b, k), dtype=torch.int32, device=DEV),
                       torch.empty((b,), dtype=torch.int32, device=DEV))
                est = full_ms * (1 if b == 1 else b / 4)
                reps = 10 if est < 50 else 5
                t_med, t_min = timeit_stats(lambda: lib.topk(q, codes, mask, k, out), 2, reps)
                row = dict(N=n, bits=32 * wc, B=b, pass_rate=1.0 if rate is None else rate,
                           mask="none" if mask is None else "int32 [B, N/32]", k=k, ms=t_med,
                           ms_min=t_min, floor_ms=floor_ms, full_scan_floor_ms=full_ms,
                           vs_floor=t_med / floor_ms, code_bytes=code_bytes, mask_bytes=mask_bytes,
                           union_items=union_items, bw=bw)
                if anchor:
                    try:
                        av, ai = anchor_topk(q, codes, mask, k)
                        torch.cuda.synchronize()
                        s, i, c = out
                        # Scores must agree (indices may differ among ties).
                        cnt = c.long()
                        agree = all(torch.equal(s[r, :cnt[r]].to(torch.int32), av[r, :cnt[r]].to(torch.int32))
                                    for r in range(b))
                        row["anchor_scores_agree"] = bool(agree)
                        row["anchor_ms"], _ = timeit_stats(lambda: anchor_topk(q, codes, mask, k), 1, 3)
                    except torch.OutOfMemoryError:
                        row["anchor_ms"] = None
                    torch.cuda.empty_cache()
                rows.append(row)
                a = row.get("anchor_ms")
                log(f"  N={n:>13,} B={b:>2} pass={row['pass_rate']*100:>6.2f}% k={k:>4} | "
                    f"{t_med:8.3f} ms (min {t_min:.3f}) | floor {floor_ms:7.3f} ms -> {t_med/floor_ms:5.2f}x | "
                    f"full-scan floor {full_ms:7.3f} | anchor {'-' if a is None else f'{a:.2f}'} ms"
                    + ("" if "anchor_scores_agree" not in row else f" (scores agree: {row['anchor_scores_agree']})"))
            del mask
            torch.cuda.empty_cache()
        del codes
        torch.cuda.empty_cache()


def main():
    args = arg_parser(budget=400.0).parse_args()
    t0 = time.time()
    lib = Lib(args.lib)
    name = torch.cuda.get_device_name()
    log(f"device: {name}; torch {torch.__version__}")
    corr = correctness(lib, args.quick)
    log(f"correctness: {sum(corr.values())}/{len(corr)} PASS ({time.time()-t0:.1f} s)")
    rows, bws = [], []
    if args.correctness_only:
        configs = []
    elif args.quick:
        configs = [(10_000_000, 4, [(1, None, [100], True), (1, 0.1, [100], True), (64, 0.1, [100], True)])]
    else:
        # (B, pass rate (None: no mask), ks, anchor?)
        configs = [
            (1_000_000_000, 4, [(1, 0.1, [100, 1000], True), (1, 1.0, [100], False),
                                (1, None, [100], True), (1, 0.01, [100], False),
                                (1, 0.001, [100], False), (8, 0.1, [100], False),
                                (64, 0.1, [100], False)]),
            (100_000_000, 4, [(1, 0.1, [100], True), (1, 1.0, [100], True), (1, 0.001, [100], False),
                              (64, 0.1, [100], True), (64, 1.0, [100], False)]),
        ]
    res = dict(device=name, torch=torch.__version__, correctness=corr, rows=rows, bandwidth=bws)
    try:
        bench(lib, configs, rows, args.budget, t0, bws)
    except Exception as e:  # keep what was measured
        log(f"benchmark aborted: {e!r}")
        res["bench_error"] = repr(e)
    res["seconds"] = time.time() - t0
    write_results(args.out, "gpu_hamming.json", res, "hamming_harness.log")
    log(f"total {time.time()-t0:.1f}s; correctness {'ALL PASS' if all(corr.values()) else 'FAILURES'}")
    log("| N | B | pass | k | ms | floor ms | x floor | full-scan floor ms | anchor ms |")
    for r in rows:
        a = r.get("anchor_ms")
        log(f"| {r['N']:,} | {r['B']} | {r['pass_rate']*100:g}%{' (no mask)' if r['mask']=='none' else ''} | {r['k']} | "
            f"{r['ms']:.3f} | {r['floor_ms']:.3f} | {r['vs_floor']:.2f} | {r['full_scan_floor_ms']:.3f} | "
            f"{'-' if a is None else f'{a:.2f}'} |")


if __name__ == "__main__":
    main()
