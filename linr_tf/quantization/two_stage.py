"""`two_stage_search`: the index's codes + exact rerank search over plain tensors.

    found = two_stage_search(queries, encoder, encoder(items), items, k=10, rerank_factor=10)
    codes, factors = rabitq.encode_items(items)
    found = two_stage_search(queries, rabitq, codes, items, k=10, item_factors=factors)

The same `RefineSearch(HammingSearch(encoder), rerank_factor)` (or
`RefineSearch(RaBitQSearch(rabitq), ...)`) an `ItemIndex` with codes and
vectors runs (`linr_tf/search/refine.py`), for arrays that are not in an
index (benchmarks, recall studies).
"""

import tensorflow as tf

from linr_tf.index.rows import Rows
from linr_tf.ops.hamming_ops import all_pass_mask
from linr_tf.ops.mask_ops import FilterMask
from linr_tf.ops.topk_ops import MaskedTopK
# A module reference (not a name): linr_tf.search's kernels import this package.
from linr_tf import search as search_lib


def two_stage_search(queries, encoder, item_codes, item_vectors, k: int,
                     rerank_factor: int = 10, mask=None, item_factors=None,
                     name=None) -> MaskedTopK:
  """Top-k by codes (r k candidates), reranked exactly with stored vectors.

  Args:
    queries: float32 [B, d].
    encoder: the `SignOPORP` that produced `item_codes` (queries are encoded
      with it in-graph), or a `RaBitQ` (asymmetric stage 1; needs
      `item_factors`).
    item_codes: int32 [N, m / 32].
    item_vectors: [N, d] float32 / float16 / bfloat16.
    k: results per query (python int > 0).
    rerank_factor: r >= 1; stage 1 keeps r * k candidates.
    mask: int32 [B, ceil(N / 32)] pass bits, or None (all pass).
    item_factors: float32 [N] (`RaBitQ.encode_items`), with a `RaBitQ` encoder.
    name: op name.

  Returns:
    MaskedTopK(scores [B, k] exact dot products, indices [B, k], count [B]).
  """
  if k <= 0:
    raise ValueError(f"k must be positive, got {k}")
  asymmetric = hasattr(encoder, "query_bits")
  if asymmetric != (item_factors is not None):
    raise ValueError("item_factors go with a RaBitQ encoder (and only with one)")
  searcher = search_lib.make_searcher("float32", encoder, rerank_factor)
  with tf.name_scope(name or "two_stage_search"):
    queries = tf.convert_to_tensor(queries, tf.float32)
    item_codes = tf.convert_to_tensor(item_codes, tf.int32)
    if mask is None:
      mask = all_pass_mask(tf.shape(queries)[0], tf.shape(item_codes)[0])
    factors = None if item_factors is None else tf.convert_to_tensor(item_factors, tf.float32)
    rows = Rows(codes=item_codes, vectors=tf.convert_to_tensor(item_vectors),
                code_factors=factors)
    # The pass counts are not read by the 1-bit searchers.
    return searcher.search(queries, rows, FilterMask(mask, None), int(k))
