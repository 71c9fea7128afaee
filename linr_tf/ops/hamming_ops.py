"""Filtered top-k over packed 1-bit codes by number of matching bits.

`hamming_top_k` wraps op LinrHammingTopK: score = m - popcount(query XOR item)
for codes of m = 32 * Wc bits (e.g. from `linr_tf.quantization.SignOPORP`),
with the same pass mask, ordering and padding as `masked_top_k`.
"""

import tensorflow as tf

from linr_tf.ops import _library
from linr_tf.ops.topk_ops import MaskedTopK

HAMMING_OP_NAME = "LinrHammingTopK"
# Largest k (custom_ops/quantization/hamming_large_k.h): k is an int32, and
# B * k <= MAX_OUTPUT_SLOTS (the op says so with an InvalidArgumentError).
# min(k, N) above 4096 (CPU) / 16384 (GPU) runs the counting path, same outputs.
MAX_K = 2**31 - 1
MAX_OUTPUT_SLOTS = 2**31


def all_pass_mask(batch_size, num_items):
  """int32 [B, ceil(N / 32)] mask letting every item pass (bits past N set too;
  the op ignores them)."""
  words = (tf.convert_to_tensor(num_items, tf.int32) + 31) // 32
  return tf.fill(tf.stack([batch_size, words]), tf.constant(-1, tf.int32))


def hamming_top_k(query_codes, item_codes, mask, k, name=None) -> MaskedTopK:
  """Top-k items per query by matching bits, among those passing `mask`.

  Args:
    query_codes: int32 [B, Wc] packed codes (bit j = bit j % 32 of word j // 32).
    item_codes: int32 [N, Wc] packed codes of the same width.
    mask: int32 [B, ceil(N / 32)] pass bits (e.g. from `filter_mask`), or None
      to let every item pass.
    k: int32 scalar > 0 (may exceed N), at most MAX_K, and B * k at most
      MAX_OUTPUT_SLOTS.
    name: op name.

  Returns:
    MaskedTopK(scores float32 [B, k] = matching bits, indices int32 [B, k],
    count int32 [B]); order score descending, ties by smaller index;
    count[b] = min(k, passing items); padded slots hold -inf and -1.

  Raises:
    tf.errors.InvalidArgumentError on k <= 0, k > MAX_K, B * k >
    MAX_OUTPUT_SLOTS, code width mismatch or inconsistent shapes.
  """
  if isinstance(k, int) and k > MAX_K:
    raise tf.errors.InvalidArgumentError(
        None, None, f"{HAMMING_OP_NAME}: k={k} is above the largest supported k "
        f"{MAX_K} (int32 k and indices)")
  module = _library.load_library()
  with tf.name_scope(name or "hamming_top_k"):
    query_codes = tf.convert_to_tensor(query_codes, tf.int32, name="query_codes")
    item_codes = tf.convert_to_tensor(item_codes, tf.int32, name="item_codes")
    if mask is None:
      mask = all_pass_mask(tf.shape(query_codes)[0], tf.shape(item_codes)[0])
    mask = tf.convert_to_tensor(mask, tf.int32, name="mask")
    k = tf.convert_to_tensor(k, tf.int32, name="k")
    scores, indices, count = module.linr_hamming_top_k(query_codes, item_codes, mask, k)
  return MaskedTopK(scores, indices, count)


tf.no_gradient(HAMMING_OP_NAME)
