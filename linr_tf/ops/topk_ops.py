"""Filtered exact top-k by dot product over a per-query pass mask.

`masked_top_k` (op LinrMaskedTopK, similarity masking: streams every item) and
`prefilter_top_k` (op LinrPrefilterTopK, explicit pre-filtering: gathers only
passing items) return identical results; `filtered_top_k` evaluates filter
programs with `filter_mask` and picks one of them per request.
"""

import collections

import tensorflow as tf

from linr_tf.ops import _library
from linr_tf.ops.mask_ops import filter_mask

MaskedTopK = collections.namedtuple("MaskedTopK", ["scores", "indices", "count"])

MASKED_OP_NAME = "LinrMaskedTopK"
PREFILTER_OP_NAME = "LinrPrefilterTopK"

# Filter strategies of `filtered_top_k` / `top_k_over_mask`.
STRATEGIES = ("auto", "mask", "prefilter")

# Pass rate (of the batch's union, per chunk of items on the CPU) above which
# "auto" streams rather than compacts. Measured by bench/cpu_prefilter.py
# (see bench/RESULTS.md).
PREFILTER_MAX_PASS_RATE = 0.75


def _convert(queries, items, mask, k):
  queries = tf.convert_to_tensor(queries, tf.float32, name="queries")
  items = tf.convert_to_tensor(items, name="items")
  mask = tf.convert_to_tensor(mask, tf.int32, name="mask")
  k = tf.convert_to_tensor(k, tf.int32, name="k")
  return queries, items, mask, k


def masked_top_k(queries, items, mask, k, name=None) -> MaskedTopK:
  """Top-k items per query among those whose bit is set in `mask`.

  Scores are dot products accumulated in float32; order is score descending,
  ties by smaller item index; NaN scores rank as -inf. The [B, N] score
  matrix is never materialised. Streams all items (best at high pass rates).

  Args:
    queries: float32 [B, d].
    items: float32, float16 or bfloat16 [N, d].
    mask: int32 [B, ceil(N / 32)] pass bits (bit i % 32 of word i // 32),
      e.g. from `filter_mask`.
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
    scores, indices, count = module.linr_masked_top_k(*_convert(queries, items, mask, k))
  return MaskedTopK(scores, indices, count)


def prefilter_top_k(queries, items, mask, k, max_union_rate: float = 1.0,
                    name=None) -> MaskedTopK:
  """Same contract and results as `masked_top_k`, by explicit pre-filtering.

  Compacts the ids passing any query of the batch, then gathers and scores
  only those rows (best at low pass rates). Where more than `max_union_rate`
  of the items pass some query (per chunk of items on the CPU, over all items
  on the GPU, decided on the device), it streams them as `masked_top_k` does:
  with a rate below 1 this one op serves every pass rate, and nothing waits
  on the host to choose.
  """
  if not 0.0 <= max_union_rate:
    raise ValueError(f"max_union_rate must be >= 0, got {max_union_rate}")
  module = _library.load_library()
  with tf.name_scope(name or "prefilter_top_k"):
    scores, indices, count = module.linr_prefilter_top_k(
        *_convert(queries, items, mask, k), max_union_rate=float(max_union_rate))
  return MaskedTopK(scores, indices, count)


def filtered_top_k(queries, items, item_bits, program, k, strategy: str = "auto",
                   prefilter_max_pass_rate: float = PREFILTER_MAX_PASS_RATE,
                   name=None) -> MaskedTopK:
  """`filter_mask(item_bits, program)` then `top_k_over_mask`.

  Args:
    queries, items, k: as in `masked_top_k`.
    item_bits: int32 [N, W] attribute bitsets.
    program: int32 [B, L, 2 + W] filter programs.
    strategy, prefilter_max_pass_rate: as in `top_k_over_mask`.
    name: op name.

  Returns:
    MaskedTopK, identical for every strategy.
  """
  with tf.name_scope(name or "filtered_top_k"):
    return top_k_over_mask(queries, items, filter_mask(item_bits, program), k,
                           strategy, prefilter_max_pass_rate)


def top_k_over_mask(queries, items, passing, k, strategy: str = "auto",
                    prefilter_max_pass_rate: float = PREFILTER_MAX_PASS_RATE
                    ) -> MaskedTopK:
  """Top-k over the items of a `FilterMask` (mask + counts), by one strategy.

  strategy: "mask" (`masked_top_k`), "prefilter" (`prefilter_top_k`) or
  "auto": `prefilter_top_k` with max_union_rate = prefilter_max_pass_rate, so
  items are compacted where few pass and streamed where many do, decided
  inside the op (on the GPU, on the device: no host round trip).
  """
  if strategy not in STRATEGIES:
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
  mask, _ = passing
  if strategy == "mask":
    return masked_top_k(queries, items, mask, k)
  if strategy == "prefilter":
    return prefilter_top_k(queries, items, mask, k)
  return prefilter_top_k(queries, items, mask, k, max_union_rate=prefilter_max_pass_rate)


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
  return [grad_queries, grad_items, None, None]


for _op_name in (MASKED_OP_NAME, PREFILTER_OP_NAME):
  try:
    tf.RegisterGradient(_op_name)(_masked_top_k_grad)
  except KeyError:  # already registered (module loaded twice under another name)
    pass
