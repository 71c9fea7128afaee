"""The primitives every searcher is built from, on the LiNR custom ops.

    kernels = CustomOpKernels()
    passing = kernels.pass_mask(filters, bit_keys, attributes)   # FilterMask
    found = kernels.dot_top_k(queries, vectors, passing, k, strategy="auto")
    found = kernels.hamming_top_k(query_codes, codes, passing, k)
    found = kernels.asymmetric_hamming_top_k(planes, scales, codes, factors, passing, k)

A searcher (`linr_tf.search`) says *what* is scored; kernels say *how*: these
run `LinrCompileFilter` / `LinrFilterMask` / `LinrMaskedTopK` /
`LinrPrefilterTopK` / `LinrHammingTopK` / `LinrAsymmetricHammingTopK` (CPU or GPU kernels, whichever device
TensorFlow places them on) and read the index rows with `LinrReadRows`;
`StockKernels` (`stock_kernels.py`) give the same results from stock TF ops
for the portable export. A `FilterMask.mask` is opaque to searchers: each
kernel set consumes its own.
"""

import tensorflow as tf

from linr_tf import attributes as attributes_lib
from linr_tf import column_filters
from linr_tf import ops
from linr_tf.ops.topk_ops import MaskedTopK


class CustomOpKernels:
  """Filter, score and select with the LiNR op library."""

  name = "custom_ops"
  # Live updates need LinrWriteRows (atomic row writes).
  supports_updates = True

  def read(self, layout, variables, only=()):
    """One consistent snapshot of the row variables (`LinrReadRows`)."""
    return layout.read(variables, only)

  def pass_mask(self, filters, bit_keys, attributes, columns=None) -> ops.FilterMask:
    """Filter strings [B] -> pass bitmap [B, ceil(N / 32)] + pass counts [B];
    deleted and empty slots never pass. `columns` (a `FilterColumns`): the
    index's exact numbers, value ids and id -> slot table, evaluated in the
    same pass (`LinrFilterMaskColumns`)."""
    if columns is not None:
      return column_filters.column_pass_mask(filters, bit_keys, attributes, columns)
    program = attributes_lib.compile_filters(filters, bit_keys)
    return ops.filter_mask(attributes, program)

  def dot_top_k(self, queries, vectors, passing: ops.FilterMask, k,
                strategy: str = "auto") -> MaskedTopK:
    """Exact top-k by dot product: similarity masking or explicit pre-filtering."""
    return ops.top_k_over_mask(queries, vectors, passing, k, strategy=strategy)

  def hamming_top_k(self, query_codes, codes, passing: ops.FilterMask, k) -> MaskedTopK:
    """Top-k by matching bits (scores = matching bits)."""
    return ops.hamming_top_k(query_codes, codes, passing.mask, k)

  def mol_top_k(self, queries, items, gate_bias, gate_weight, passing: ops.FilterMask, k,
                softmax: bool = True) -> MaskedTopK:
    """Exhaustive filtered top-k by a Mixture-of-Logits score (`LinrMoLTopK`)."""
    from linr_tf.ops import mol_ops  # noqa: PLC0415  (issue 15)
    return mol_ops.mol_top_k(queries, items, gate_bias, gate_weight, passing.mask, k,
                             softmax=softmax)

  def asymmetric_hamming_top_k(self, query_planes, query_scales, codes, factors,
                               passing: ops.FilterMask, k) -> MaskedTopK:
    """Top-k by the asymmetric 1-bit estimate (`RaBitQ`; scores = estimates)."""
    return ops.asymmetric_hamming_top_k(query_planes, query_scales, codes, factors,
                                        passing.mask, k)
