"""Where a TensorFlow call's time goes: host ops and GPU kernels, from TF's
own profiler (XPlane), summed per name.

    from tf_profile import profile          # bench/ on sys.path
    summary = profile(lambda: fn(**inputs), reps=20, logdir="/tmp/prof")
    # {"wall_ms_per_call": ..., "planes": {"/host:CPU": [[name, ms_per_call, count], ...],
    #                                       "/device:GPU:0": [...]}}

Host events are TensorFlow's TraceMe spans (ops run by the executor, copies,
the function call); device events are kernels, memcpys and memsets (CUPTI,
when TensorFlow finds it). Durations are summed over the `reps` calls and
divided by `reps`; nested host spans are counted in each of them.
"""

import collections
import glob
import os
import re
import time

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

_SUFFIX = re.compile(r"[#:].*$")


def _clean(name: str) -> str:
  """'LinrFilterMask:LinrFilterMask#id=3#' -> 'LinrFilterMask'."""
  return _SUFFIX.sub("", name) or name


def read_xspace(logdir: str):
  paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
  if not paths:
    raise FileNotFoundError(f"no *.xplane.pb under {logdir}")
  space = xplane_pb2.XSpace()
  with open(paths[-1], "rb") as f:
    space.ParseFromString(f.read())
  return space


def summarize(space, reps: int, top: int = 25):
  planes = {}
  for plane in space.planes:
    if not (plane.name.startswith("/host:CPU") or plane.name.startswith("/device:GPU")):
      continue
    meta = {k: v for k, v in plane.event_metadata.items()}
    totals = collections.defaultdict(lambda: [0.0, 0])
    for line in plane.lines:
      for ev in line.events:
        m = meta.get(ev.metadata_id)
        name = _clean((m.display_name or m.name) if m else str(ev.metadata_id))
        totals[name][0] += ev.duration_ps / 1e9   # ms
        totals[name][1] += 1
    rows = sorted(([n, round(t / reps, 4), c] for n, (t, c) in totals.items()),
                  key=lambda r: -r[1])
    if rows:
      planes[plane.name] = rows[:top]
  return planes


def profile(fn, reps: int = 20, logdir: str = "/tmp/linr_tf_profile", top: int = 25):
  """Runs fn() `reps` times under the profiler (after one warm-up call)."""
  fn()
  tf.profiler.experimental.start(logdir)
  t0 = time.perf_counter()
  try:
    for _ in range(reps):
      out = fn()
      if isinstance(out, dict):
        out = [v.numpy() for v in out.values()]
  finally:
    wall = (time.perf_counter() - t0) * 1e3 / reps
    tf.profiler.experimental.stop()
  return {"wall_ms_per_call": round(wall, 4), "reps": reps,
          "planes": summarize(read_xspace(logdir), reps, top)}
