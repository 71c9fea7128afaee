"""Two-stage search: top-(r k) by 1-bit codes, then exact rerank.

Stage 1 runs `hamming_top_k` over the packed codes (with the pass mask);
stage 2 gathers the stored float vectors of the candidates, scores them by
dot product in float32 and keeps the k best. Results follow the
`masked_top_k` conventions: score descending, ties by smaller item index, NaN
as -inf, padded slots -inf / -1, count = min(k, passing items).
"""

import tensorflow as tf

from linr_tf.ops.hamming_ops import hamming_top_k
from linr_tf.ops.topk_ops import MaskedTopK


def rerank(queries, item_vectors, candidates: MaskedTopK, k) -> MaskedTopK:
  """Exact top-k among `candidates` (a MaskedTopK of item indices).

  Args:
    queries: float32 [B, d].
    item_vectors: [N, d] float32 / float16 / bfloat16 stored vectors.
    candidates: candidate indices [B, K'] (-1 padded) and count [B].
    k: python int, 0 < k <= K'.
  """
  queries = tf.convert_to_tensor(queries, tf.float32)
  idx = candidates.indices
  valid = idx >= 0
  safe = tf.where(valid, idx, tf.zeros_like(idx))
  vectors = tf.cast(tf.gather(item_vectors, safe), tf.float32)          # [B, K', d]
  scores = tf.einsum("bd,bkd->bk", queries, vectors)
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


def two_stage_search(queries, encoder, item_codes, item_vectors, k: int,
                     rerank_factor: int = 10, mask=None, name=None) -> MaskedTopK:
  """Top-k by codes (r k candidates), reranked exactly with stored vectors.

  Args:
    queries: float32 [B, d].
    encoder: the `SignOPORP` that produced `item_codes` (queries are encoded
      with it in-graph).
    item_codes: int32 [N, m / 32].
    item_vectors: [N, d] float32 / float16 / bfloat16.
    k: results per query (python int > 0).
    rerank_factor: r >= 1; stage 1 keeps r * k candidates.
    mask: int32 [B, ceil(N / 32)] pass bits, or None (all pass).
    name: op name.

  Returns:
    MaskedTopK(scores [B, k] exact dot products, indices [B, k], count [B]).
  """
  if k <= 0:
    raise ValueError(f"k must be positive, got {k}")
  if rerank_factor < 1:
    raise ValueError(f"rerank_factor must be >= 1, got {rerank_factor}")
  with tf.name_scope(name or "two_stage_search"):
    queries = tf.convert_to_tensor(queries, tf.float32)
    query_codes = encoder(queries)
    candidates = hamming_top_k(query_codes, item_codes, mask, int(rerank_factor) * int(k))
    return rerank(queries, item_vectors, candidates, int(k))
