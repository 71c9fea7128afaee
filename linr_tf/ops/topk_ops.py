"""`masked_top_k`: filtered exact top-k by dot product (op LinrMaskedTopK)."""

import collections

import tensorflow as tf

from linr_tf.ops import _library

MaskedTopK = collections.namedtuple("MaskedTopK", ["scores", "indices", "count"])

OP_NAME = "LinrMaskedTopK"


def masked_top_k(queries, items, item_bits, clauses, num_clauses, k, name=None
                 ) -> MaskedTopK:
  """Top-k items per query among those passing the query's compiled filter.

  Scores are dot products accumulated in float32; order is score descending,
  ties by smaller item index. The [B, N] score matrix is never materialised.

  Args:
    queries: float32 [B, d].
    items: float32, float16 or bfloat16 [N, d].
    item_bits: int32 [N, W] attribute bitsets.
    clauses: int32 [B, C, W] and num_clauses: int32 [B], e.g. from
      `compile_filter` (num_clauses[b] = 0: no filter).
    k: int32 scalar > 0 (may exceed N).
    name: op name.

  Returns:
    MaskedTopK(scores float32 [B, k], indices int32 [B, k], count int32 [B]);
    count[b] = min(k, passing items); padded slots hold -inf and -1.
    Differentiable w.r.t. queries and items.

  Raises:
    tf.errors.InvalidArgumentError on k <= 0 or inconsistent shapes.
  """
  module = _library.load_library()
  with tf.name_scope(name or "masked_top_k"):
    queries = tf.convert_to_tensor(queries, tf.float32, name="queries")
    items = tf.convert_to_tensor(items, name="items")
    item_bits = tf.convert_to_tensor(item_bits, tf.int32, name="item_bits")
    clauses = tf.convert_to_tensor(clauses, tf.int32, name="clauses")
    num_clauses = tf.convert_to_tensor(num_clauses, tf.int32, name="num_clauses")
    k = tf.convert_to_tensor(k, tf.int32, name="k")
    scores, indices, count = module.linr_masked_top_k(
        queries, items, item_bits, clauses, num_clauses, k)
  return MaskedTopK(scores, indices, count)


def _masked_top_k_grad(op, grad_scores, unused_grad_indices, unused_grad_count):
  """Gradients of scores[b, j] = <queries[b], items[indices[b, j]]>."""
  queries, items = op.inputs[0], op.inputs[1]
  indices = op.outputs[1]
  valid = indices >= 0
  # Padded slots have score -inf: mask the upstream grad (avoids -inf * 0).
  grad = tf.where(valid, grad_scores, tf.zeros_like(grad_scores))     # [B, k]
  safe_indices = tf.where(valid, indices, tf.zeros_like(indices))
  chosen = tf.cast(tf.gather(items, safe_indices), tf.float32)       # [B, k, d]
  grad_queries = tf.einsum("bk,bkd->bd", grad, chosen)
  num_items = tf.shape(items, out_type=tf.int32)[0]
  # Padded slots go to an extra segment that is dropped.
  segments = tf.where(valid, indices, tf.fill(tf.shape(indices), num_items))
  contributions = grad[:, :, None] * queries[:, None, :]              # [B, k, d]
  dim = tf.shape(queries)[1]
  grad_items = tf.math.unsorted_segment_sum(
      tf.reshape(contributions, tf.stack([-1, dim])),
      tf.reshape(segments, [-1]), num_items + 1)[:num_items]
  grad_items = tf.cast(grad_items, items.dtype)
  return [grad_queries, grad_items, None, None, None, None]


try:
  tf.RegisterGradient(OP_NAME)(_masked_top_k_grad)
except KeyError:  # already registered (module loaded twice under another name)
  pass
