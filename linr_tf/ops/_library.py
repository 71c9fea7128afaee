"""Finds and loads the custom-op library `_linr_ops.so` (once per process).

Two builds exist: CPU-only (`bazel build //custom_ops:_linr_ops.so`, the
default) and CPU + GPU kernels (`bazel build --config=cuda ...`, or
`bash tools/build_ops.sh build/ops-cuda --cuda` on a machine with nvcc and no
Bazel). A build made by `tools/build_ops.sh` has a `_linr_ops.json` beside it
naming the TensorFlow version it was compiled against and whether it holds
GPU kernels; `load_library` skips builds for another TensorFlow and, when
TensorFlow sees a GPU, prefers one with GPU kernels.
"""

import json
import os
import threading
from typing import List, Optional

import tensorflow as tf

LIBRARY_NAME = "_linr_ops.so"
ENV_VAR = "LINR_TF_OPS_LIBRARY"

_lock = threading.Lock()
_module = None


def _repo_root() -> str:
  # Not os.path.realpath: under Bazel the runfiles tree (which holds the .so)
  # is made of symlinks into the source tree, and the runfiles layout is the one
  # we want. linr_tf/ops/_library.py -> repo root is three levels up.
  here = os.path.dirname(os.path.abspath(__file__))
  return os.path.dirname(os.path.dirname(here))


def build_info(path: str) -> Optional[dict]:
  """The `_linr_ops.json` beside a library ({"tf_version", "cuda"}), if any."""
  meta = os.path.join(os.path.dirname(path), "_linr_ops.json")
  if not os.path.isfile(meta):
    return None
  with open(meta, encoding="utf-8") as f:
    return json.load(f)


def _gpu_visible() -> bool:
  return bool(tf.config.list_physical_devices("GPU"))


def candidate_paths() -> List[str]:
  """Paths tried, in order: $LINR_TF_OPS_LIBRARY; with a GPU visible, the GPU
  builds (build/ops-cuda, then any CUDA build below); runfiles/source,
  bazel-bin, build/ops-cpu. Builds whose `_linr_ops.json` names another
  TensorFlow version are left out."""
  env_path = os.environ.get(ENV_VAR)
  if env_path:
    return [env_path]
  root = _repo_root()
  paths = [os.path.join(root, "build", "ops-cuda", LIBRARY_NAME),
           os.path.join(root, "custom_ops", LIBRARY_NAME),
           os.path.join(root, "bazel-bin", "custom_ops", LIBRARY_NAME),
           os.path.join(root, "build", "ops-cpu", LIBRARY_NAME)]
  usable = []
  for path in paths:
    info = build_info(path)
    if info is not None and info.get("tf_version") != tf.__version__:
      continue
    usable.append((path, bool(info and info.get("cuda"))))
  gpu = _gpu_visible()
  # Stable sort: on a GPU machine CUDA builds first, else CPU builds first.
  usable.sort(key=lambda entry: entry[1] != gpu)
  return [path for path, _ in usable]


# Called while tracing graphs: plain Python, not for AutoGraph to convert.
@tf.autograph.experimental.do_not_convert
def load_library(path: Optional[str] = None):
  """Loads the op library (first hit of `candidate_paths()` unless `path`).

  Returns the module made by `tf.load_op_library`; later calls return the same
  module. Raises FileNotFoundError naming every path tried.
  """
  global _module
  with _lock:
    if _module is not None:
      return _module
    tried = [path] if path else candidate_paths()
    for candidate in tried:
      if os.path.isfile(candidate):
        _module = tf.load_op_library(candidate)
        return _module
    raise FileNotFoundError(
        f"LiNR-TF op library {LIBRARY_NAME} not found; tried:\n  "
        + "\n  ".join(tried)
        + "\nBuild it with `bazel build //custom_ops:_linr_ops.so` (after "
        f"`bash tools/configure.sh`), or point {ENV_VAR} at it.")
