"""`MoLSearch`: Mixture-of-Logits scoring over the stored [N, Q, d] item
embeddings, exhaustive or two-stage.

    searcher = MoLSearch(scorer)                           # exhaustive (LinrMoLTopK)
    searcher = MoLSearch(scorer, rerank_candidates=200)    # dot top-K', exact MoL rerank
    found = searcher.search(queries, rows, passing, k=10)  # queries [B, P, d]

Exhaustive: every passing item is scored with the full MoL by the
`mol_top_k` kernel primitive (a running top-k; nothing of size [B, N, P*Q]).
Two-stage: the dot-product kernel (`dot_top_k`) over `rows.vectors` (each
item's mean component) with the query's mean component keeps K' candidates
per query, then their [Q, d] rows are gathered and rescored exactly (FAISS's
`IndexRefine` with a MoL refiner). Results follow the top-k conventions:
score descending, ties by smaller slot, -inf / -1 padding, count.
"""

import tensorflow as tf

from linr_tf.ops.mol_ops import mol_scores
from linr_tf.ops.topk_ops import MaskedTopK
from linr_tf.search.searcher import Searcher


def mol_rerank(queries, item_rows, gate_bias, gate_weight, softmax, candidates: MaskedTopK,
               k) -> MaskedTopK:
  """Exact MoL top-k among `candidates` (indices [B, K'], -1 padded)."""
  idx = candidates.indices
  valid = idx >= 0
  safe = tf.where(valid, idx, tf.zeros_like(idx))
  scores = mol_scores(queries, tf.gather(item_rows, safe), gate_bias, gate_weight, softmax)
  scores = tf.where(tf.math.is_nan(scores) | ~valid, tf.fill(tf.shape(scores), float("-inf")),
                    scores)
  key = tf.where(valid, idx, tf.fill(tf.shape(idx), tf.int32.max))
  order = tf.argsort(key, axis=1, stable=True)   # ties -> smaller slot (top_k is stable)
  scores = tf.gather(scores, order, batch_dims=1)
  idx = tf.gather(idx, order, batch_dims=1)
  kk = tf.minimum(tf.convert_to_tensor(k, tf.int32), tf.shape(idx)[1])
  top = tf.math.top_k(scores, k=kk, sorted=True)
  out_idx = tf.gather(idx, top.indices, batch_dims=1)
  count = tf.minimum(candidates.count, kk)
  keep = tf.range(kk)[None, :] < count[:, None]
  return MaskedTopK(tf.where(keep, top.values, float("-inf")),
                    tf.where(keep, out_idx, -1), count)


class MoLSearch(Searcher):
  """Mixture-of-Logits searcher over `rows.mol_vectors` (and `rows.vectors`
  for the two-stage option). `scorer`: a `MixtureOfLogits` (gate_bias,
  gate_weight, softmax)."""

  strategies = ("auto",)

  def __init__(self, scorer, rerank_candidates: int = 0, kernels=None):
    super().__init__(kernels)
    if int(rerank_candidates) < 0:
      raise ValueError(f"rerank_candidates must be >= 0, got {rerank_candidates}")
    self.scorer = scorer
    self.rerank_candidates = int(rerank_candidates)
    self.stores = ("mol_vectors",) + (("vectors",) if self.rerank_candidates else ())

  def describe(self) -> str:
    how = (f"dot top-{self.rerank_candidates} then exact MoL rerank" if self.rerank_candidates
           else "exhaustive")
    return f"MoLSearch(P={self.scorer.num_query}, Q={self.scorer.num_item}, {how})"

  def search(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    self.check_strategy(strategy)
    queries = tf.convert_to_tensor(queries, tf.float32)
    bias = self.scorer.gate_bias(queries)
    weight = self.scorer.gate_weight()
    if not self.rerank_candidates:
      return self.kernels.mol_top_k(queries, rows.mol_vectors, bias, weight, passing, k,
                                    self.scorer.softmax)
    coarse = self.kernels.dot_top_k(tf.reduce_mean(queries, axis=1), rows.vectors, passing,
                                    max(self.rerank_candidates, 1))
    return mol_rerank(queries, rows.mol_vectors, bias, weight, self.scorer.softmax, coarse, k)
