"""Retrieve, then rank the retrieved candidates on their stored features.

    out = retrieve_and_rank(index, head, features, queries, filters, k_retrieve=2000, k_final=50)
    out.item_ids, out.retrieval_scores, out.rank_scores, out.count

One consistent snapshot of the index (`read_rows`: vectors, filters and the
ranking stores together) serves both stages, so a candidate is ranked on the
features of the same version that retrieval scored. Only the `count` valid
candidates of each query are ranked: their (query, slot) pairs are gathered
into one [M] batch for the ranker and scattered back; the padding keeps id
"" and scores -inf, like `serving_default`.
"""

from typing import NamedTuple

import tensorflow as tf

from linr_tf.index.item_index import slots_to_ids


class RankedList(NamedTuple):
  """item_ids [B, k_final] ("" = padding), retrieval_scores and rank_scores
  [B, k_final] (-inf = padding), count [B] = min(k_final, retrieved)."""
  item_ids: tf.Tensor
  retrieval_scores: tf.Tensor
  rank_scores: tf.Tensor
  count: tf.Tensor


def candidate_features(index, snapshot, slots):
  """(vectors float32 [M, d], rank_dense [M, F], rank_ids [M, C]) of slots [M]
  from a snapshot (zeros [M, 0] for an absent store)."""
  m = tf.size(slots)
  if snapshot.vectors is None:
    raise ValueError("ranking needs the index's float vectors (index.vectors)")
  vectors = tf.cast(tf.gather(snapshot.vectors, slots), tf.float32)
  dense = (tf.gather(snapshot.rank_dense, slots) if snapshot.rank_dense is not None
           else tf.zeros(tf.stack([m, 0]), tf.float32))
  ids = (tf.gather(snapshot.rank_ids, slots) if snapshot.rank_ids is not None
         else tf.zeros(tf.stack([m, 0]), tf.int64))
  return vectors, dense, ids


def rank_valid(ranker, rank_queries, index, snapshot, slots, scores):
  """Rank logits [B, K] of retrieved slots [B, K] (-1 = padding, -inf there);
  the ranker runs on the valid pairs only."""
  valid = slots >= 0
  where = tf.where(valid)                                   # [M, 2]
  flat = tf.gather_nd(slots, where)
  vectors, dense, ids = candidate_features(index, snapshot, flat)
  logit, _ = ranker(tf.gather(rank_queries, where[:, 0]), vectors, dense, ids,
                    tf.gather_nd(scores, where))
  ranked = tf.scatter_nd(where, logit, tf.shape(slots, out_type=tf.int64))
  return tf.where(valid, ranked, tf.constant(float("-inf")))


def retrieve_and_rank(index, ranker, rank_queries, queries, filters, k_retrieve, k_final,
                      strategy: str = "auto") -> RankedList:
  """Top `k_retrieve` by the index's searcher, then the top `k_final` of those
  by `ranker` (a `Ranker`) with `rank_queries` [B, dq] its query input.
  k_final <= k_retrieve (checked by the caller's signature)."""
  snapshot = index.read_rows()
  scores, slots, count = index.search(queries, filters, k_retrieve, strategy, snapshot)
  ranked = rank_valid(ranker, rank_queries, index, snapshot, slots, scores)
  k = tf.minimum(tf.cast(k_final, tf.int32), tf.shape(slots)[1])
  top = tf.math.top_k(ranked, k)                            # ties: the better retrieved
  order = top.indices
  final_slots = tf.gather(slots, order, batch_dims=1)
  final_count = tf.minimum(count, k)
  pad = tf.range(k)[None, :] >= final_count[:, None]
  neg_inf = tf.constant(float("-inf"))
  final_slots = tf.where(pad, tf.constant(-1, final_slots.dtype), final_slots)
  return RankedList(
      item_ids=slots_to_ids(snapshot.ids, final_slots),
      retrieval_scores=tf.where(pad, neg_inf, tf.gather(scores, order, batch_dims=1)),
      rank_scores=tf.where(pad, neg_inf, top.values),
      count=final_count)
