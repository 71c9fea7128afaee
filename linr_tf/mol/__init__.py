"""Multi-embedding retrieval: Mixture-of-Logits scoring, item clusters, cold start.

    from linr_tf.mol import MixtureOfLogits, MoLRetrievalModel, MoLIndex, kmeans

See `layer.py` (the scorer), `clusters.py` (k-means, cluster embeddings),
`model.py` (towers + TFRS training; as the product model, a `RetrievalModel`
with the MoL `ItemIndex`), `index.py` (a features-in front end over that
`ItemIndex`), `checks.py` (numpy checks of [Q, d] rows and cluster ids),
`config.py` (the `mol` config section). A config with a `mol` section goes
through `linr_tf train / export / query` like any other (README). Names load
lazily: `linr_tf.config` imports `mol.config` before the towers exist.
"""

import importlib

from linr_tf.mol.config import MoLConfig

_LAZY = {"ItemClusters": "clusters", "kmeans": "clusters", "MixtureOfLogits": "layer",
         "MoLRetrievalModel": "model", "MoLIndex": "index"}


def __getattr__(name):
  if name in _LAZY:
    return getattr(importlib.import_module(f"linr_tf.mol.{_LAZY[name]}"), name)
  raise AttributeError(f"module 'linr_tf.mol' has no attribute {name!r}")


__all__ = ["ItemClusters", "MixtureOfLogits", "MoLConfig", "MoLIndex", "MoLRetrievalModel",
           "kmeans"]
