"""Filtered exact top-k by a Mixture-of-Logits score (op LinrMoLTopK).

    found = mol_top_k(queries, items, gate_bias, gate_weight, mask, k=10)
    found.scores, found.indices, found.count          # as masked_top_k

For query b (P embeddings) and item i (Q embeddings):
  x[p*Q + q] = <queries[b, p], items[i, q]>,
  l = gate_bias[b] + x @ gate_weight,  g = softmax(l) (or l),
  score = sum_j g[j] x[j].
`gate_bias` is the per-query part of the gate (`MixtureOfLogits.gate_bias`:
an MLP over the query embeddings, run once per query and broadcast over
the items); `gate_weight` the item-dependent part, linear in the P x Q dot
products, applied inside the scan (see custom_ops/mol/mol_common.h).
`mol_scores` is the same score in stock TF ops (for gathered candidates: the
gradient, the two-stage rerank and the portable kernels).
"""

import tensorflow as tf

from linr_tf.ops import _library
from linr_tf.ops.topk_ops import MaskedTopK

MOL_OP_NAME = "LinrMoLTopK"
MAX_COMPONENTS = 8


def mol_scores(queries, items, gate_bias, gate_weight, softmax: bool = True):
  """MoL scores of gathered candidates, in float32 stock ops.

  Args:
    queries: float32 [B, P, d].
    items: [B, K, Q, d] (any float dtype; cast to float32).
    gate_bias: float32 [B, P*Q].
    gate_weight: float32 [P*Q, P*Q].
    softmax: normalise the gate logits with a softmax (else use them as is).

  Returns:
    float32 [B, K].
  """
  queries = tf.convert_to_tensor(queries, tf.float32)
  items = tf.cast(items, tf.float32)
  x = tf.einsum("bpd,bkqd->bkpq", queries, items)
  shape = tf.shape(x)
  x = tf.reshape(x, tf.stack([shape[0], shape[1], shape[2] * shape[3]]))   # [B, K, PQ]
  logits = gate_bias[:, None, :] + tf.einsum("bki,ij->bkj", x, gate_weight)
  gate = tf.nn.softmax(logits, axis=-1) if softmax else logits
  return tf.reduce_sum(gate * x, axis=-1)


def mol_score_matrix(queries, items, gate_bias, gate_weight, softmax: bool = True):
  """MoL scores [B, N] of queries [B, P, d] against shared items [N, Q, d]
  (stock ops; the [B, N, P*Q] dot products are materialised: training and
  small catalogues)."""
  queries = tf.convert_to_tensor(queries, tf.float32)
  items = tf.cast(items, tf.float32)
  x = tf.einsum("bpd,nqd->bnpq", queries, items)
  shape = tf.shape(x)
  x = tf.reshape(x, tf.stack([shape[0], shape[1], shape[2] * shape[3]]))   # [B, N, PQ]
  logits = gate_bias[:, None, :] + tf.einsum("bni,ij->bnj", x, gate_weight)
  gate = tf.nn.softmax(logits, axis=-1) if softmax else logits
  return tf.reduce_sum(gate * x, axis=-1)


def mol_top_k(queries, items, gate_bias, gate_weight, mask, k, softmax: bool = True,
              name=None) -> MaskedTopK:
  """Top-k items per query by MoL score among those whose bit is set in `mask`.

  Args:
    queries: float32 [B, P, d], 1 <= P <= 8.
    items: float32, float16 or bfloat16 [N, Q, d], 1 <= Q <= 8.
    gate_bias: float32 [B, P*Q] per-query gate logits.
    gate_weight: float32 [P*Q, P*Q] gate logits per dot product.
    mask: int32 [B, ceil(N / 32)] pass bits (e.g. `filter_mask`), or None
      to let every item pass.
    k: int32 scalar > 0 (may exceed N).
    softmax: softmax-normalised gate (else the raw logits weigh the dots).
    name: op name.

  Returns:
    MaskedTopK(scores float32 [B, k], indices int32 [B, k], count int32 [B]);
    order score descending, ties by smaller index, NaN as -inf; padded slots
    -inf / -1. Differentiable w.r.t. queries, items (the returned rows),
    gate_bias and gate_weight.

  Raises:
    tf.errors.InvalidArgumentError on k <= 0 or inconsistent shapes (the
    message names the input).
  """
  module = _library.load_library()
  with tf.name_scope(name or "mol_top_k"):
    queries = tf.convert_to_tensor(queries, tf.float32, name="queries")
    items = tf.convert_to_tensor(items, name="items")
    gate_bias = tf.convert_to_tensor(gate_bias, tf.float32, name="gate_bias")
    gate_weight = tf.convert_to_tensor(gate_weight, tf.float32, name="gate_weight")
    if mask is None:
      words = (tf.shape(items)[0] + 31) // 32
      mask = tf.fill(tf.stack([tf.shape(queries)[0], words]), tf.constant(-1, tf.int32))
    mask = tf.convert_to_tensor(mask, tf.int32, name="mask")
    k = tf.convert_to_tensor(k, tf.int32, name="k")
    scores, indices, count = module.linr_mo_l_top_k(queries, items, gate_bias, gate_weight,
                                                    mask, k, softmax=bool(softmax))
  return MaskedTopK(scores, indices, count)


def _mol_top_k_grad(op, grad_scores, unused_grad_indices, unused_grad_count):
  """Gradients of scores[b, j] = MoL(queries[b], items[indices[b, j]]) (analytic)."""
  queries, items, gate_bias, gate_weight = op.inputs[:4]
  softmax = op.get_attr("softmax")
  indices = op.outputs[1]
  valid = indices >= 0
  grad = tf.where(valid, grad_scores, tf.zeros_like(grad_scores))          # [B, K]
  safe = tf.where(valid, indices, tf.zeros_like(indices))
  chosen = tf.cast(tf.gather(items, safe), tf.float32)                     # [B, K, Q, d]
  num_p = tf.shape(queries)[1]
  num_q = tf.shape(items)[1]
  x4 = tf.einsum("bpd,bkqd->bkpq", queries, chosen)
  shape = tf.shape(x4)
  x = tf.reshape(x4, tf.stack([shape[0], shape[1], num_p * num_q]))       # [B, K, PQ]
  logits = gate_bias[:, None, :] + tf.einsum("bki,ij->bkj", x, gate_weight)
  if softmax:
    gate = tf.nn.softmax(logits, axis=-1)
    score = tf.reduce_sum(gate * x, axis=-1, keepdims=True)
    d_logits = gate * (x - score)                                          # ds/dl
  else:
    gate = logits
    d_logits = x
  d_x = gate + tf.einsum("bkj,ij->bki", d_logits, gate_weight)             # ds/dx
  d_x = grad[:, :, None] * d_x
  d_logits = grad[:, :, None] * d_logits
  grad_bias = tf.reduce_sum(d_logits, axis=1)
  grad_weight = tf.einsum("bki,bkj->ij", x, d_logits)
  d_x4 = tf.reshape(d_x, shape)                                            # [B, K, P, Q]
  grad_queries = tf.einsum("bkpq,bkqd->bpd", d_x4, chosen)
  contributions = tf.einsum("bkpq,bpd->bkqd", d_x4, queries)               # [B, K, Q, d]
  num_items = tf.shape(items, out_type=tf.int32)[0]
  segments = tf.where(valid, indices, tf.fill(tf.shape(indices), num_items))
  row_shape = tf.shape(items)[1:]
  grad_items = tf.math.unsorted_segment_sum(
      tf.reshape(contributions, tf.concat([[-1], row_shape], 0)),
      tf.reshape(segments, [-1]), num_items + 1)[:num_items]
  grad_items = tf.cast(grad_items, items.dtype)
  return [grad_queries, grad_items, grad_bias, grad_weight, None, None]


try:
  tf.RegisterGradient(MOL_OP_NAME)(_mol_top_k_grad)
except KeyError:  # already registered
  pass
