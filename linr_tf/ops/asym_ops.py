"""Filtered top-k over 1-bit codes by an asymmetric (RaBitQ-like) score.

`asymmetric_hamming_top_k` wraps op LinrAsymmetricHammingTopK: items are m-bit
sign codes with one float factor each, queries a Bq-bit quantized projection
given as bit planes (`linr_tf.quantization.RaBitQ.encode_query`); score =
factor * sum_j (2 bit_j - 1) * (lo + delta * u_j), by bit-sliced popcounts.
Same pass mask, ordering and padding as `hamming_top_k`.

    planes, scales = rabitq.encode_query(queries)
    found = asymmetric_hamming_top_k(planes, scales, codes, factors, mask=None, k=10)
"""

import tensorflow as tf

from linr_tf.ops import _library
from linr_tf.ops.hamming_ops import all_pass_mask
from linr_tf.ops.topk_ops import MaskedTopK

ASYM_OP_NAME = "LinrAsymmetricHammingTopK"


def asymmetric_hamming_top_k(query_planes, query_scales, item_codes, item_factors, mask, k,
                             name=None) -> MaskedTopK:
  """Top-k items per query by the asymmetric 1-bit estimate, among `mask`.

  Args:
    query_planes: int32 [B, Bq, Wc] bit planes of the quantized queries (1 <= Bq <= 8).
    query_scales: float32 [B, 2]: (lo, delta) of each query's quantization.
    item_codes: int32 [N, Wc] packed sign codes.
    item_factors: float32 [N] per-item factors.
    mask: int32 [B, ceil(N / 32)] pass bits, or None (every item passes).
    k: int32 scalar > 0 (may exceed N).
    name: op name.

  Returns:
    MaskedTopK(scores float32 [B, k] (estimated inner products), indices int32
    [B, k], count int32 [B]); score descending, ties by smaller index, NaN as
    -inf; padded slots hold -inf and -1.

  Raises:
    tf.errors.InvalidArgumentError on bad shapes, Bq outside 1..8, a code
    width mismatch or k <= 0.
  """
  module = _library.load_library()
  with tf.name_scope(name or "asymmetric_hamming_top_k"):
    query_planes = tf.convert_to_tensor(query_planes, tf.int32, name="query_planes")
    query_scales = tf.convert_to_tensor(query_scales, tf.float32, name="query_scales")
    item_codes = tf.convert_to_tensor(item_codes, tf.int32, name="item_codes")
    item_factors = tf.convert_to_tensor(item_factors, tf.float32, name="item_factors")
    if mask is None:
      mask = all_pass_mask(tf.shape(query_planes)[0], tf.shape(item_codes)[0])
    mask = tf.convert_to_tensor(mask, tf.int32, name="mask")
    k = tf.convert_to_tensor(k, tf.int32, name="k")
    scores, indices, count = module.linr_asymmetric_hamming_top_k(
        query_planes, query_scales, item_codes, item_factors, mask, k)
  return MaskedTopK(scores, indices, count)


tf.no_gradient(ASYM_OP_NAME)
