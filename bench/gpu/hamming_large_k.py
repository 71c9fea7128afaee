"""GPU harness of LinrHammingTopK's counting path for very large k
(custom_ops/quantization/hamming_large_k_gpu.cu.h; issue 13, LiNR's coarse
stage: 1B x 64-bit codes, one query, top-50M), no TensorFlow.

Loads liblinr_cuda.so (custom_ops/cuda/build.sh) through ctypes and drives
`linr_hamming_topk_large_k` (the counting path, any k) and `linr_hamming_topk`
(dispatching: the buffer path for min(k, N) <= 16384) with PyTorch tensors.

1. Correctness, bit-exact (scores, indices, count, padding) against a torch
   brute force (popcount by byte table, order score desc then index asc),
   moderate N: k above and below 16384, k > N, k > passing items, pass rates
   100 / 10 / 0 %, massive ties, no mask, B = 1 / 3 / 64, Wc in {1, 2, 3, 4,
   8, 16, 32, 64}, misaligned codes (generic path); and counting == buffer path
   for k <= 16384.
2. Timing (CUDA events, median of a few calls): 1B x 64-bit codes (Wc = 2,
   8 GB, generated on the GPU), B = 1, k = 50M, pass 100 % (all-ones mask, and
   no mask) and 10 %. HBM floors from the read bandwidth measured in this run
   (common.read_bandwidth): one pass (codes sectors holding a passing item +
   mask + 8 bytes per output slot) and the two-pass design's (codes and mask
   twice). PyTorch anchors in the same process: `torch_counting` (SWAR
   popcount into an int16 score vector, bincount threshold, nonzero, stable
   sort: the same outputs, checked equal) and `torch_topk` (torch.topk of the
   score vector, k = 50M; scores checked equal). The crossover against the
   buffer path at N = 100M, k in {1000, 4096, 16384}.

  python3 bench/gpu/hamming_large_k.py --lib build/liblinr_cuda.so --out $OUT \
      [--quick] [--correctness-only] [--merge-into bench/results/gpu_hamming.json]
  python3 bench/gpu/large_k_merge.py --from $OUT/hamming_large_k.json --into bench/results/gpu_hamming.json

Writes $OUT/hamming_large_k.json (+ .log) and prints the summary JSON;
--merge-into sets summary.top50m_1b_64bit_ms (and a `large_k` section) in an
existing results file (gpu_hamming.json), keeping everything else, when the
correctness suite passed; bench/gpu/large_k_merge.py does the same later from
the written JSON (no GPU needed).
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEV, I32, I64, SZ, VP, arg_parser, copy_bandwidth, load_lib, log,  # noqa: E402
                    read_bandwidth, stream, timeit_stats, workspace, write_results)
from large_k_merge import merge_into  # noqa: E402

I32_MIN, I32_MAX = -2**31, 2**31 - 1
TOPK_ARGS = [VP, VP, VP, I64, I64, I64, I64, VP, SZ, VP, VP, VP, VP]


class Lib:
    def __init__(self, path):
        self.L = load_lib(path, {
            "linr_hamming_topk_workspace_bytes": ([I64, I64, I64], SZ),
            "linr_hamming_topk": (TOPK_ARGS, I32),
            "linr_hamming_topk_large_k_workspace_bytes": ([I64, I64, I64], SZ),
            "linr_hamming_topk_large_k": (TOPK_ARGS, I32),
        })
        self.ws = {}

    def topk(self, q, codes, mask, k, counting=True, out=None):
        """counting: linr_hamming_topk_large_k, else linr_hamming_topk."""
        b, wc = q.shape
        n = codes.shape[0]
        if counting:
            nbytes = self.L.linr_hamming_topk_large_k_workspace_bytes(b, n, wc)
            fn = self.L.linr_hamming_topk_large_k
        else:
            nbytes = self.L.linr_hamming_topk_workspace_bytes(b, n, k)
            fn = self.L.linr_hamming_topk
        ws = workspace(self.ws, 0, nbytes)
        if out is None:
            out = (torch.full((b, k), 12345.0, dtype=torch.float32, device=DEV),  # poisoned
                   torch.full((b, k), -7, dtype=torch.int32, device=DEV),
                   torch.full((b,), -7, dtype=torch.int32, device=DEV))
        s, i, c = out
        rc = fn(q.data_ptr(), codes.data_ptr(), None if mask is None else mask.data_ptr(), b, n,
                wc, k, ws.data_ptr(), ws.numel(), s.data_ptr(), i.data_ptr(), c.data_ptr(),
                stream())
        assert rc == 0, f"{'linr_hamming_topk_large_k' if counting else 'linr_hamming_topk'} error {rc}"
        return s, i, c


# ---------------------------------------------------------------------------
# Masks and codes.
def pack_words(bits):
    """bool [W, 32] (cuda) -> int32 [W]: bit j of word w = bits[w, j]."""
    w = (bits.to(torch.int64) << torch.arange(32, device=bits.device)).sum(-1)
    return torch.where(w >= 2**31, w - 2**32, w).to(torch.int32)


def random_mask(b, n, rate, gen, chunk_words=1 << 20):
    """int32 [B, ceil(N/32)], each bit (< N) set with probability `rate`."""
    m = (n + 31) // 32
    if rate >= 1.0:
        return torch.full((b, m), -1, dtype=torch.int32, device=DEV)
    mask = torch.empty((b, m), dtype=torch.int32, device=DEV)
    for r in range(b):
        for w0 in range(0, m, chunk_words):
            w1 = min(m, w0 + chunk_words)
            bits = torch.rand((w1 - w0, 32), generator=gen, device=DEV) < rate
            mask[r, w0:w1] = pack_words(bits)
    return mask


def passes_of(mask, n):
    b, m = mask.shape
    bits = (mask.to(torch.int64).unsqueeze(-1) >> torch.arange(32, device=DEV)) & 1
    return bits.view(b, m * 32)[:, :n].bool()


def rand_codes(gen, n, wc, ties=False):
    if ties:  # four base codes with a few flipped low bits: few distinct scores
        pool = torch.randint(I32_MIN, I32_MAX, (4, wc), generator=gen, device=DEV, dtype=torch.int32)
        pick = torch.randint(0, 4, (n,), generator=gen, device=DEV)
        flip = torch.randint(0, 2, (n, wc), generator=gen, device=DEV, dtype=torch.int32)
        return pool[pick] ^ flip
    return torch.randint(I32_MIN, I32_MAX, (n, wc), generator=gen, device=DEV, dtype=torch.int32)


# ---------------------------------------------------------------------------
# Reference: byte-table popcount, order by key score * 2^32 + (2^32 - 1 - i).
_LUT = None


def ref_scores(q, codes):
    global _LUT
    if _LUT is None:
        _LUT = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int64, device=DEV)
    b, wc = q.shape
    cb = codes.contiguous().view(torch.uint8).view(codes.shape[0], wc * 4)
    qb = q.contiguous().view(torch.uint8).view(b, wc * 4)
    return torch.stack([32 * wc - _LUT[(cb ^ qb[r]).long()].sum(1) for r in range(b)])


def reference(q, codes, passes, k):
    b = q.shape[0]
    n = codes.shape[0]
    s = ref_scores(q, codes)
    idx = torch.arange(n, device=DEV, dtype=torch.int64)
    key = torch.where(passes, s * 2**32 + (2**32 - 1 - idx), torch.full_like(s, -1))
    vals = torch.full((b, k), -float("inf"), dtype=torch.float32, device=DEV)
    inds = torch.full((b, k), -1, dtype=torch.int32, device=DEV)
    cnt = passes.sum(1).clamp(max=k).to(torch.int32)
    top = torch.sort(key, dim=1, descending=True).values[:, :min(k, n)]
    for r in range(b):
        c = int(cnt[r])
        vals[r, :c] = (top[r, :c] >> 32).to(torch.float32)
        inds[r, :c] = (2**32 - 1 - (top[r, :c] & 0xFFFFFFFF)).to(torch.int32)
    return vals, inds, cnt


def same(got, want):
    """'' when equal, else a description of the first difference."""
    msgs = []
    for nm, g, w in zip(("scores", "indices", "count"), got, want):
        if not torch.equal(g, w):
            bad = (g != w).nonzero()
            first = bad[0].tolist() if len(bad) else []
            msgs.append(f"{nm} differ at {len(bad)} places, first {first}: got "
                        f"{g[tuple(first)].item() if first else ''} want "
                        f"{w[tuple(first)].item() if first else ''}")
    return "; ".join(msgs)


def correctness(lib, quick):
    log("== correctness (bit-exact vs torch brute force; counting vs buffer path) ==")
    g = torch.Generator(device=DEV).manual_seed(13)
    res = {}

    def record(name, got, want):
        try:
            torch.cuda.synchronize()
            msg = same(got, want)
        except Exception as e:  # keep going, report
            msg = f"exception {e!r}"
        res[name] = not msg
        log(f"  [{'PASS' if not msg else 'FAIL'}] {name}" + (f": {msg}" if msg else ""))

    def case(name, q, codes, mask, k, n):
        try:
            passes = (torch.ones((q.shape[0], n), dtype=torch.bool, device=DEV) if mask is None
                      else passes_of(mask, n))
            record(name, lib.topk(q, codes, mask, k), reference(q, codes, passes, k))
        except Exception as e:
            res[name] = False
            log(f"  [FAIL] {name}: exception {e!r}")

    n = 300_007 if quick else 1_000_003
    for wc in (1, 2, 3, 4, 8, 16, 32, 64):
        for b in (1, 3):
            ties = (wc + b) % 2 == 0
            codes = rand_codes(g, n if wc <= 16 else 100_003, wc, ties)
            nn = codes.shape[0]
            q = rand_codes(g, b, wc, ties)
            mask = torch.cat([random_mask(1, nn, r, g) for r in [1.0, 0.1, 0.0][:b]])
            for k in (20_000, 150_000):
                case(f"N={nn} Wc={wc} B={b} k={k} pass=100/10/0% ties={ties}", q, codes, mask, k, nn)
    codes = rand_codes(g, 40_000, 2)
    q = rand_codes(g, 2, 2)
    case("k=100000 > N=40000 Wc=2 B=2 no mask", q, codes, None, 100_000, 40_000)
    mask = torch.cat([random_mask(1, 40_000, 0.3, g), random_mask(1, 40_000, 1.0, g)])
    case("k=30000 > passing (30%) N=40000 Wc=2", q, codes, mask, 30_000, 40_000)
    codes = rand_codes(g, 1, 2).repeat(500_000, 1)
    case("all codes identical N=500000 k=200000", q, codes, random_mask(2, 500_000, 0.5, g),
         200_000, 500_000)
    flat = rand_codes(g, 60_001 * 4 + 1, 1).view(-1)
    codes = flat[1:1 + 60_001 * 4].view(60_001, 4)  # not 16-byte aligned: generic path
    q = rand_codes(g, 3, 4)
    case("misaligned Wc=4 codes (generic path) B=3 k=30000", q, codes,
         random_mask(3, 60_001, 0.5, g), 30_000, 60_001)
    codes = rand_codes(g, 200_000, 16)
    q = rand_codes(g, 64, 16)
    case("B=64 Wc=16 k=20000 pass=10%", q, codes, random_mask(64, 200_000, 0.1, g), 20_000, 200_000)
    nb = 3_000_017 if quick else 20_000_033   # > 8192 ranges: prefix carries across tiles
    codes = rand_codes(g, nb, 2)
    q = rand_codes(g, 1, 2)
    case(f"N={nb} Wc=2 B=1 k=1000000 pass=100% (many ranges)", q, codes,
         random_mask(1, nb, 1.0, g), 1_000_000, nb)
    # Counting == buffer path for k <= 16384 (the same total order).
    codes = rand_codes(g, 500_009, 2, True)
    for b, k in ((1, 1), (1, 1000), (8, 4096), (3, 16384)):
        q = rand_codes(g, b, 2, True)
        mask = random_mask(b, 500_009, 0.2 if b > 1 else 1.0, g)
        try:
            record(f"counting == buffer path N=500009 Wc=2 B={b} k={k}",
                   lib.topk(q, codes, mask, k, counting=True),
                   lib.topk(q, codes, mask, k, counting=False))
        except Exception as e:
            res[f"counting == buffer path B={b} k={k}"] = False
            log(f"  [FAIL] counting == buffer B={b} k={k}: exception {e!r}")
    return res


# ---------------------------------------------------------------------------
# PyTorch anchors.
def torch_scores(q, codes, chunk=1 << 27):
    """int16 [N] matching bits of one query (SWAR popcount, chunked)."""
    n, wc = codes.shape
    out = torch.empty(n, dtype=torch.int16, device=DEV)
    m1, m2, m4, h = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101
    if wc % 2 == 0:
        c64 = codes.view(torch.int64).view(n, wc // 2)
        q64 = q.view(torch.int64).view(1, wc // 2)
        for c0 in range(0, n, chunk):
            x = c64[c0:c0 + chunk] ^ q64
            x = x - ((x >> 1) & m1)
            x = (x & m2) + ((x >> 2) & m2)
            x = (x + (x >> 4)) & m4
            x = (x * h) >> 56
            out[c0:c0 + chunk] = (32 * wc - x.sum(-1)).to(torch.int16)
    else:
        for c0 in range(0, n, chunk):
            x = codes[c0:c0 + chunk] ^ q.view(1, wc)
            x = x - ((x >> 1) & 0x55555555)
            x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
            x = (x + (x >> 4)) & 0x0F0F0F0F
            x = (x * 0x01010101) >> 24
            out[c0:c0 + chunk] = (32 * wc - x.sum(-1)).to(torch.int16)
    return out


def torch_counting(q, codes, mask, k):
    """Same outputs as the op (B = 1): scores, threshold from a bincount,
    nonzero of the selected, stable sort by score (ties by index)."""
    n, wc = codes.shape
    s = torch_scores(q, codes)
    if mask is not None:
        s = torch.where(passes_of(mask, n)[0], s, torch.full_like(s, -1))
    hist = torch.bincount((s + 1).to(torch.int64), minlength=32 * wc + 2)[1:]  # -1 dropped
    at_least = torch.flip(torch.cumsum(torch.flip(hist, [0]), 0), [0])  # items scoring >= t
    sel = min(k, int(at_least[0]))
    if sel == 0:
        return torch.empty(0, device=DEV), torch.empty(0, dtype=torch.int32, device=DEV), 0
    t = int((at_least >= sel).nonzero().max())
    above = (s > t).nonzero().view(-1)
    tie = (s == t).nonzero().view(-1)[:sel - above.numel()]
    cand = torch.sort(torch.cat([above, tie])).values          # ascending index
    order = torch.sort(s[cand], descending=True, stable=True).indices
    out_i = cand[order]
    return s[out_i].to(torch.float32), out_i.to(torch.int32), sel


def torch_topk(q, codes, mask, k):
    n, _ = codes.shape
    s = torch_scores(q, codes)
    if mask is not None:
        s = torch.where(passes_of(mask, n)[0], s, torch.full_like(s, -1))
    return torch.topk(s, k, sorted=True)


# ---------------------------------------------------------------------------
# Timing.
def sectors_read(mask, n, wc):
    """32-byte sectors of codes holding >= 1 passing item (B = 1; Wc <= 8)."""
    per = max(1, 8 // wc)
    if mask is None:
        return (n + per - 1) // per * max(1, wc // 8)
    total = 0
    cw = 1 << 24
    shifts = torch.arange(0, 32, per, device=DEV)
    for w0 in range(0, mask.shape[1], cw):
        u = mask[0, w0:w0 + cw].to(torch.int64) & 0xFFFFFFFF
        grp = u.clone()
        for j in range(1, per):
            grp |= u >> j
        total += int(((grp.unsqueeze(-1) >> shifts) & 1).sum())
    return total


def bench_case(lib, q, codes, mask, k, rate, bw, reps, anchors, rows, label):
    n, wc = codes.shape
    m = (n + 31) // 32
    out = (torch.empty((1, k), dtype=torch.float32, device=DEV),
           torch.empty((1, k), dtype=torch.int32, device=DEV),
           torch.empty((1,), dtype=torch.int32, device=DEV))
    t_med, t_min = timeit_stats(lambda: lib.topk(q, codes, mask, k, True, out), 1, reps)
    code_bytes = sectors_read(mask, n, wc) * 32
    mask_bytes = 0 if mask is None else m * 4
    out_bytes = 8 * min(k, n)
    floor = (code_bytes + mask_bytes + out_bytes) / bw * 1e3
    floor2 = (2 * code_bytes + 2 * mask_bytes + out_bytes) / bw * 1e3
    row = dict(label=label, device=torch.cuda.get_device_name(), N=n, bits=32 * wc, B=1,
               pass_rate=rate, mask="none" if mask is None else "int32 [B, N/32]", k=k,
               ms=t_med, ms_min=t_min, floor_ms=floor, floor_two_pass_ms=floor2,
               vs_floor=t_med / floor, code_bytes=code_bytes, mask_bytes=mask_bytes,
               out_bytes=out_bytes, bw=bw)
    if anchors:
        s, i, c = out
        for name, fn in (("torch_counting", torch_counting), ("torch_topk", torch_topk)):
            try:
                torch.cuda.empty_cache()
                r = fn(q, codes, mask, k)
                torch.cuda.synchronize()
                cnt = int(c[0])
                if name == "torch_counting":
                    sv, iv, sel = r
                    row["torch_counting_equal"] = bool(
                        sel == cnt and torch.equal(sv, s[0, :cnt]) and torch.equal(iv, i[0, :cnt]))
                else:
                    v = r.values
                    row["torch_topk_scores_equal"] = bool(
                        torch.equal(v[:cnt].to(torch.float32), s[0, :cnt]))
                del r
                row[f"{name}_ms"], _ = timeit_stats(lambda: fn(q, codes, mask, k), 0, 2)
            except Exception as e:  # OOM or unsupported size: recorded, not fatal
                row[f"{name}_ms"] = None
                row[f"{name}_error"] = repr(e)[:200]
            torch.cuda.empty_cache()
    rows.append(row)
    log(f"  {label}: N={n:,} {32*wc}-bit pass={rate*100:g}%{' (no mask)' if mask is None else ''} "
        f"k={k:,} | {t_med:8.3f} ms (min {t_min:.3f}) | floor {floor:.3f} ms (two-pass {floor2:.3f})"
        f" -> {t_med/floor:.2f}x | torch counting {row.get('torch_counting_ms')} ms "
        f"(equal {row.get('torch_counting_equal')}) | torch topk {row.get('torch_topk_ms')} ms "
        f"(scores equal {row.get('torch_topk_scores_equal')})")
    return row


def bench(lib, quick, rows, cross):
    g = torch.Generator(device=DEV).manual_seed(7)
    n = 100_000_000 if quick else 1_000_000_000
    wc = 2
    k = 5_000_000 if quick else 50_000_000
    log(f"== benchmark N={n:,} x 64-bit codes ({n*wc*4/1e9:.1f} GB), B=1, k={k:,} ==")
    codes = torch.randint(I32_MIN, I32_MAX, (n, wc), generator=g, device=DEV, dtype=torch.int32)
    q = torch.randint(I32_MIN, I32_MAX, (1, wc), generator=g, device=DEV, dtype=torch.int32)
    flat = codes.view(-1)[: min(codes.numel(), 1024**3)].view(torch.float32)  # <= 4 GB
    read_bw, copy_bw = read_bandwidth(flat, 2, 10), copy_bandwidth()
    bw = read_bw
    log(f"  bandwidth: read-only sum {read_bw/1e12:.2f} TB/s (floor uses this), "
        f"D2D copy {copy_bw/1e12:.2f} TB/s (read+write)")
    for rate, label in ((1.0, "full"), (None, "nomask"), (0.1, "10pct")):
        mask = None if rate is None else random_mask(1, n, rate, g)
        bench_case(lib, q, codes, mask, k, 1.0 if rate is None else rate, bw, 5, True, rows, label)
        del mask
        torch.cuda.empty_cache()
    del codes
    torch.cuda.empty_cache()
    # Crossover against the buffer path (linr_hamming_topk, k <= 16384).
    nc = 100_000_000
    codes = torch.randint(I32_MIN, I32_MAX, (nc, wc), generator=g, device=DEV, dtype=torch.int32)
    for rate in (1.0, 0.1):
        mask = random_mask(1, nc, rate, g)
        for kk in (1000, 4096, 16384):
            out = (torch.empty((1, kk), dtype=torch.float32, device=DEV),
                   torch.empty((1, kk), dtype=torch.int32, device=DEV),
                   torch.empty((1,), dtype=torch.int32, device=DEV))
            tb, _ = timeit_stats(lambda: lib.topk(q, codes, mask, kk, False, out), 2, 10)
            tc, _ = timeit_stats(lambda: lib.topk(q, codes, mask, kk, True, out), 2, 10)
            cross.append(dict(device=torch.cuda.get_device_name(), N=nc, bits=64, B=1,
                              pass_rate=rate, k=kk, buffer_ms=tb, counting_ms=tc))
            log(f"  crossover N={nc:,} pass={rate*100:g}% k={kk}: buffer {tb:.3f} ms, "
                f"counting {tc:.3f} ms")
    return read_bw, copy_bw


def summary_of(rows, quick):
    by = {r["label"]: r for r in rows}
    pick = lambda label: None if quick or label not in by else round(by[label]["ms"], 3)
    return {"top50m_1b_64bit_ms": pick("full"), "top50m_1b_64bit_nomask_ms": pick("nomask"),
            "top50m_1b_64bit_10pct_ms": pick("10pct")}


def main():
    ap = arg_parser(budget=600.0)
    ap.add_argument("--merge-into", default=None,
                    help="results JSON (bench/results/gpu_hamming.json) to update")
    args = ap.parse_args()
    t0 = time.time()
    lib = Lib(args.lib)
    name = torch.cuda.get_device_name()
    log(f"device: {name}; torch {torch.__version__}")
    corr = correctness(lib, args.quick)
    ok = sum(corr.values())
    log(f"correctness: {ok}/{len(corr)} PASS ({time.time()-t0:.1f} s)")
    rows, cross, bw = [], [], {}
    note = ("counting path (two scans of the codes); floor_ms = one pass over the code sectors "
            "holding a passing item + mask + 8 B per output slot at the read bandwidth of this "
            "run; floor_two_pass_ms = the design's two scans")
    if not args.correctness_only:
        try:
            read_bw, copy_bw = bench(lib, args.quick, rows, cross)
            bw = dict(read_bw=read_bw, copy_bw=copy_bw)
        except Exception as e:  # keep what was measured
            log(f"benchmark aborted: {e!r}")
            note += f"; benchmark aborted: {e!r}"
    if args.quick:
        note += "; --quick: 100M codes and k = 5M, so the 1B summary is null"
    res = dict(device=name, torch=torch.__version__, correctness=corr, correctness_pass=ok,
               correctness_total=len(corr), rows=rows, crossover=cross, bandwidth=bw, note=note,
               seconds=time.time() - t0)
    res["summary"] = summary_of(rows, args.quick)
    write_results(args.out, "hamming_large_k.json", res, "hamming_large_k.log")
    if args.merge_into:
        try:
            ms = merge_into(args.merge_into, res)
            log(f"merged summary.top50m_1b_64bit_ms = {ms} into {args.merge_into}")
        except (OSError, ValueError) as e:
            log(f"not merged: {e}")
    print(json.dumps(dict(summary=res["summary"], correctness=f"{ok}/{len(corr)}", rows=rows,
                          crossover=cross), indent=1))


if __name__ == "__main__":
    main()
