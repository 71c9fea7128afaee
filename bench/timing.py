"""`timed(fn)`: p50 / p95 wall-clock milliseconds of a synchronising call,
shared by the GPU benchmarks (bench/tf_gpu.py, bench/gpu/torch_anchors.py)."""

import time

import numpy as np


def timed(fn, warmup=3, iters=20):
  """(p50 ms, p95 ms) of `fn()` over `iters` calls after `warmup` calls;
  `fn` must wait for its device work (fetch outputs, synchronize)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(iters):
    t0 = time.perf_counter()
    fn()
    times.append((time.perf_counter() - t0) * 1e3)
  return float(np.percentile(times, 50)), float(np.percentile(times, 95))
