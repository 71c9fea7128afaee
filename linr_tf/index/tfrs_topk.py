"""`IndexTopK`: an `ItemIndex` seen through TFRS's `TopK` interface.

Lets TFRS metrics and tasks retrieve through the LiNR index and its op:

    metric = tfrs.metrics.FactorizedTopK(candidates=IndexTopK(index, k=100))
"""

from typing import Optional

import tensorflow as tf
import tensorflow_recommenders as tfrs


class IndexTopK(tfrs.layers.factorized_top_k.TopK):
  """Unfiltered exact top-k over an `ItemIndex`, returning external ids."""

  def __init__(self, index, k: int = 100, **kwargs):
    super().__init__(k=k, **kwargs)
    self._index = index

  def index(self, candidates, identifiers=None):
    raise NotImplementedError(
        "IndexTopK searches an ItemIndex; fill it with ItemIndex.assign or "
        "RetrievalModel.build_index instead")

  def is_exact(self) -> bool:
    return True

  def call(self, queries: tf.Tensor, k: Optional[int] = None):
    scores, ids, _ = self._index(queries, None, k or self._k)
    # TFRS marks padding with NaN scores (as for ScaNN).
    scores = tf.where(tf.math.is_inf(scores), float("nan"), scores)
    return scores, ids
