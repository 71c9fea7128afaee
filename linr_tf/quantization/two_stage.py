"""`two_stage_search`: the index's codes + exact rerank search over plain tensors.

    found = two_stage_search(queries, encoder, encoder(items), items, k=10, rerank_factor=10)

The same `RefineSearch(HammingSearch(encoder), rerank_factor)` an `ItemIndex`
with codes and vectors runs (`linr_tf/search/refine.py`), for arrays that are
not in an index (benchmarks, recall studies).
"""

import tensorflow as tf

from linr_tf.index.rows import Rows
from linr_tf.ops.hamming_ops import all_pass_mask
from linr_tf.ops.mask_ops import FilterMask
from linr_tf.ops.topk_ops import MaskedTopK
from linr_tf.search import HammingSearch, RefineSearch


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
  searcher = RefineSearch(HammingSearch(encoder), rerank_factor)
  with tf.name_scope(name or "two_stage_search"):
    queries = tf.convert_to_tensor(queries, tf.float32)
    item_codes = tf.convert_to_tensor(item_codes, tf.int32)
    if mask is None:
      mask = all_pass_mask(tf.shape(queries)[0], tf.shape(item_codes)[0])
    rows = Rows(codes=item_codes, vectors=tf.convert_to_tensor(item_vectors))
    # The pass counts are not read by the 1-bit searchers.
    return searcher.search(queries, rows, FilterMask(mask, None), int(k))
