"""Helpers shared by the GPU harnesses (harness.py, hamming_harness.py), no
TensorFlow: log capture, ctypes loading of liblinr_cuda.so, device workspace
cache, pass-mask bit packing, CUDA-event timing, bandwidth measurement,
command line and result files.
"""
import argparse
import ctypes
import json
import os
import statistics

import torch

DEV = "cuda"
LOG = []

# ctypes shorthands for the C API's signatures (custom_ops/cuda/linr_cuda_capi.cu).
VP, I64, I32, SZ = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_size_t


def log(*a):
    s = " ".join(str(x) for x in a)
    print(s, flush=True)
    LOG.append(s)


def load_lib(path, signatures):
    """ctypes.CDLL(path) with signatures {name: (argtypes, restype)} set."""
    lib = ctypes.CDLL(path)
    for name, (argtypes, restype) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = restype
    return lib


def workspace(cache, key, nbytes):
    """Device byte buffer of at least `nbytes` kept in cache[key]; replaced
    (old one freed first) when too small."""
    if key not in cache or cache[key].numel() < nbytes:
        cache.pop(key, None)
        cache[key] = torch.empty(max(nbytes, 1), dtype=torch.uint8, device=DEV)
    return cache[key]


def stream():
    """The current CUDA stream as a C pointer."""
    return torch.cuda.current_stream().cuda_stream


# ---------------------------------------------------------------------------
# Pass masks: bit i % 32 of int32 word i // 32.
def pack_bits(passes):
    """bool [B, N] (cuda) -> int32 [B, ceil(N/32)]."""
    b, n = passes.shape
    m = (n + 31) // 32
    pad = torch.zeros((b, m * 32), dtype=torch.int64, device=passes.device)
    pad[:, :n] = passes.to(torch.int64)
    w = (pad.view(b, m, 32) << torch.arange(32, device=passes.device)).sum(-1)
    w = torch.where(w >= 2**31, w - 2**32, w)
    return w.to(torch.int32)


def unpack_bits(mask, n):
    """int32 [B, M] -> bool [B, n] (n <= 32 M)."""
    b, m = mask.shape
    bits = (mask.to(torch.int64).unsqueeze(-1) >> torch.arange(32, device=mask.device)) & 1
    return bits.view(b, m * 32)[:, :n].bool()


# ---------------------------------------------------------------------------
# Timing (CUDA events: `warmup` untimed calls, then `reps` timed ones, ms).
def timeit_stats(fn, warmup, reps):
    """(median, min) in ms."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts), min(ts)


def timeit(fn, warmup, reps):
    """Median in ms."""
    return timeit_stats(fn, warmup, reps)[0]


def copy_bandwidth():
    """Bytes/s of a 2 GiB device-to-device copy, counting bytes read and written."""
    src = torch.empty(2 * 1024**3, dtype=torch.uint8, device=DEV)
    dst = torch.empty_like(src)
    t = timeit(lambda: dst.copy_(src), 2, 10)
    return 2 * src.numel() / (t * 1e-3)


def read_bandwidth(flat, warmup, reps):
    """Bytes/s of reading the 1-D tensor `flat` once (a float32-accumulated sum)."""
    t = timeit(lambda: flat.sum(dtype=torch.float32), warmup, reps)
    return flat.numel() * flat.element_size() / (t * 1e-3)


# ---------------------------------------------------------------------------
# Command line and results.
def arg_parser(budget):
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, help="liblinr_cuda.so (custom_ops/cuda/build.sh)")
    ap.add_argument("--out", default=".", help="folder for the JSON results and the log")
    ap.add_argument("--quick", action="store_true", help="smaller correctness cases and benchmark")
    ap.add_argument("--correctness-only", action="store_true",
                    help="run the correctness suite only (no timing)")
    ap.add_argument("--budget", type=float, default=budget, help="seconds for the benchmark grid")
    return ap


def write_results(out_dir, json_name, res, log_name):
    """res -> out_dir/json_name; the log so far -> out_dir/log_name."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, json_name), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(out_dir, log_name), "w") as f:
        f.write("\n".join(LOG) + "\n")
