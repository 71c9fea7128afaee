"""Where a TensorFlow call's time goes: host ops and GPU kernels, from TF's
own profiler (XPlane), summed per name.

    from tf_profile import profile          # bench/ on sys.path
    summary = profile(lambda: fn(**inputs), reps=20, logdir="/tmp/prof")
    # {"wall_ms_per_call": ..., "planes": {"/host:CPU": [[name, ms_per_call, count], ...],
    #                                       "/device:GPU:0": [...]}}

`last_call` is the timeline of the last call (host spans and kernels, in
order, from its start). Host events are TensorFlow's TraceMe spans (ops run by the executor, copies,
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


CALL_MARK = "linr_profiled_call"


def _events(space):
  """(plane, line, name, start_ps, duration_ps) of every host / GPU event;
  host names lose their '#id=..#' / ':type' suffixes, kernel names are kept."""
  for plane in space.planes:
    host = plane.name.startswith("/host:CPU")
    if not (host or plane.name.startswith("/device:GPU")):
      continue
    meta = {k: v for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      for ev in line.events:
        m = meta.get(ev.metadata_id)
        name = (m.display_name or m.name) if m else str(ev.metadata_id)
        name = _clean(name) if host else name[:90]
        yield (plane.name, line.name, name, line.timestamp_ns * 1000 + ev.offset_ps,
               ev.duration_ps)


def timeline(space, min_us: float = 3.0, limit: int = 120):
  """The last profiled call, event by event: [start_us, duration_us, where,
  name] from the call's start, events of at least `min_us`."""
  events = list(_events(space))
  marks = [e for e in events if e[2] == CALL_MARK]
  if not marks:
    return []
  _, _, _, t0, dur = max(marks, key=lambda e: e[3])
  rows = []
  for plane, line, name, start, d in events:
    if t0 <= start <= t0 + dur and d >= min_us * 1e6 and name != CALL_MARK:
      where = ("gpu:" if plane.startswith("/device") else "host:") + line[:24]
      rows.append([round((start - t0) / 1e6, 1), round(d / 1e6, 1), where, name])
  rows.sort(key=lambda r: r[0])
  return rows[:limit]


def summarize(space, reps: int, top: int = 25):
  planes = {}
  by_plane = collections.defaultdict(lambda: collections.defaultdict(lambda: [0.0, 0]))
  for plane, _, name, _, d in _events(space):
    by_plane[plane][name][0] += d / 1e9   # ms
    by_plane[plane][name][1] += 1
  for plane, totals in by_plane.items():
    rows = sorted(([n, round(t / reps, 4), c] for n, (t, c) in totals.items()),
                  key=lambda r: -r[1])
    if rows:
      planes[plane] = rows[:top]
  return planes


def profile(fn, reps: int = 20, logdir: str = "/tmp/linr_tf_profile", top: int = 25):
  """Runs fn() `reps` times under the profiler (after one warm-up call)."""
  fn()
  options = tf.profiler.experimental.ProfilerOptions(
      host_tracer_level=2, python_tracer_level=0, device_tracer_level=1)
  tf.profiler.experimental.start(logdir, options=options)
  t0 = time.perf_counter()
  try:
    for step in range(reps):
      with tf.profiler.experimental.Trace(CALL_MARK, step_num=step):
        out = fn()
        if isinstance(out, dict):
          out = [v.numpy() for v in out.values()]
  finally:
    wall = (time.perf_counter() - t0) * 1e3 / reps
    tf.profiler.experimental.stop()
  space = read_xspace(logdir)
  return {"wall_ms_per_call": round(wall, 4), "reps": reps,
          "planes": summarize(space, reps, top), "last_call": timeline(space)}
