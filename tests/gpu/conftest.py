"""GPU tests (run on a machine where TensorFlow sees a GPU; skipped elsewhere):
`bash tests/gpu/run.sh` builds the op library with its GPU kernels and runs them."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))                    # tests/ (conftest helpers)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))   # repo root

import linr_tf  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow)
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

GPUS = tf.config.list_physical_devices("GPU")
for _gpu in GPUS:
  tf.config.experimental.set_memory_growth(_gpu, True)


def pytest_collection_modifyitems(config, items):
  if GPUS:
    return
  skip = pytest.mark.skip(reason="TensorFlow sees no GPU")
  for item in items:
    item.add_marker(skip)
