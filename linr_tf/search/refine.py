"""`RefineSearch`: a coarse searcher's top r·k, reranked exactly.

    searcher = RefineSearch(HammingSearch(encoder), rerank_factor=10)
    found = searcher.search(queries, rows, passing, k=10)    # exact dot products

Stage 1 keeps `rerank_factor * k` candidates of the coarse searcher; stage 2
gathers their stored vectors, scores them in float32 and keeps the k best
(FAISS's `IndexRefine`). Results follow the top-k conventions: score
descending, ties by smaller item index, NaN as -inf, padded slots -inf / -1,
count = min(k, passing items).
"""

import tensorflow as tf

from linr_tf.ops.topk_ops import MaskedTopK
from linr_tf.search.searcher import Searcher


def rerank(queries, item_vectors, candidates: MaskedTopK, k) -> MaskedTopK:
  """Exact top-k among `candidates` (a MaskedTopK of item indices).

  Args:
    queries: float32 [B, d].
    item_vectors: [N, d] float32 / float16 / bfloat16 stored vectors.
    candidates: candidate indices [B, K'] (-1 padded) and count [B].
    k: int, 0 < k <= K' (python int or int32 scalar).
  """
  queries = tf.convert_to_tensor(queries, tf.float32)
  idx = candidates.indices
  valid = idx >= 0
  safe = tf.where(valid, idx, tf.zeros_like(idx))
  vectors = tf.cast(tf.gather(item_vectors, safe), tf.float32)          # [B, K', d]
  # A product and a sum, not einsum: a GPU matmul may run in TF32 (10-bit
  # mantissa) and the rerank is the exact stage.
  scores = tf.reduce_sum(queries[:, None, :] * vectors, axis=-1)
  neg_inf = tf.fill(tf.shape(scores), float("-inf"))
  scores = tf.where(tf.math.is_nan(scores) | ~valid, neg_inf, scores)
  # Order candidates by item index (padding last) so that top_k's tie rule
  # (lower position first) becomes "smaller item index first".
  key = tf.where(valid, idx, tf.fill(tf.shape(idx), tf.int32.max))
  order = tf.argsort(key, axis=1, stable=True)
  scores = tf.gather(scores, order, batch_dims=1)
  idx = tf.gather(idx, order, batch_dims=1)
  top = tf.math.top_k(scores, k=k, sorted=True)
  out_idx = tf.gather(idx, top.indices, batch_dims=1)
  count = tf.minimum(candidates.count, k)
  keep = tf.range(k)[None, :] < count[:, None]
  out_idx = tf.where(keep, out_idx, -tf.ones_like(out_idx))
  out_scores = tf.where(keep, top.values, tf.fill(tf.shape(top.values), float("-inf")))
  return MaskedTopK(out_scores, out_idx, count)


class RefineSearch(Searcher):
  """Two-stage search: `coarse` candidates, exact rerank over `rows.vectors`."""

  def __init__(self, coarse: Searcher, rerank_factor: int = 10):
    super().__init__(coarse.kernels)
    if int(rerank_factor) < 1:
      raise ValueError(f"rerank_factor must be >= 1, got {rerank_factor}")
    self.coarse = coarse
    self.rerank_factor = int(rerank_factor)
    self.strategies = coarse.strategies
    self.stores = tuple(coarse.stores) + ("vectors",)

  def with_kernels(self, kernels) -> "RefineSearch":
    return RefineSearch(self.coarse.with_kernels(kernels), self.rerank_factor)

  def describe(self) -> str:
    return f"RefineSearch({self.coarse.describe()}, rerank_factor={self.rerank_factor})"

  def search(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    self.check_strategy(strategy)
    candidates = self.coarse.candidates(queries, rows, passing, self.rerank_factor * k,
                                        strategy)
    return rerank(queries, rows.vectors, candidates, k)
