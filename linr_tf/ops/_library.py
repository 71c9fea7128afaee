"""Finds and loads the custom-op library `_linr_ops.so` (once per process)."""

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


def candidate_paths() -> List[str]:
  """Paths tried, in order: $LINR_TF_OPS_LIBRARY, runfiles/source, bazel-bin."""
  paths = []
  env_path = os.environ.get(ENV_VAR)
  if env_path:
    paths.append(env_path)
  root = _repo_root()
  paths.append(os.path.join(root, "custom_ops", LIBRARY_NAME))
  paths.append(os.path.join(root, "bazel-bin", "custom_ops", LIBRARY_NAME))
  return paths


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
