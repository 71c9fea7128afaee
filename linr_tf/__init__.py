"""LiNR-TF: model-based neural retrieval on TensorFlow.

The item index lives inside a Keras model as variables; search is an exhaustive,
attribute-pre-filtered top-k done by custom ops; encoders and index export as one
SavedModel.

    import linr_tf
    model = linr_tf.load("out/demo/export/1")
    model.signatures["serving_default"](user_id=tf.constant(["u1"]),
                                        filter=tf.constant(['lang = "en"']),
                                        k=tf.constant(10))
"""

import os

# TFRS 0.7.7 needs the Keras 2 API (tf_keras). `tf.keras` is resolved lazily, on
# first access, so setting this here works even if TensorFlow was imported first,
# as long as nobody touched `tf.keras` yet; `_check_keras` reports it otherwise.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _check_keras():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.keras.__name__.startswith("tf_keras"):
    raise ImportError(
        "LiNR-TF needs the Keras 2 API (tf_keras), but tf.keras resolved to "
        f"{tf.keras.__name__}. Import linr_tf before using tf.keras, or set "
        "TF_USE_LEGACY_KERAS=1 in the environment.")


_check_keras()

__version__ = "0.1.0"


def load(export_dir: str):
  """Loads a LiNR SavedModel (with the op library registered first)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from linr_tf import ops  # pylint: disable=g-import-not-at-top
  ops.load_library()
  return tf.saved_model.load(export_dir)
