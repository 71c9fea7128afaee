"""LiNR-TF custom ops: filter compilation, filter masks, filtered top-k (exact
and over 1-bit codes), consistent reads / atomic writes of the index rows.

The op library is `//custom_ops:_linr_ops.so`, loaded on first use (see
`load_library` for where it is looked up). No Keras import happens here.
"""

from linr_tf.ops._library import load_library
from linr_tf.ops.asym_ops import asymmetric_hamming_top_k
from linr_tf.ops.filter_ops import compile_filter, compile_filter_columns
from linr_tf.ops.hamming_ops import hamming_top_k
from linr_tf.ops.mask_ops import FilterMask, filter_mask, filter_mask_columns
from linr_tf.ops.rows_ops import read_rows, write_rows
from linr_tf.ops.topk_ops import (MaskedTopK, PREFILTER_MAX_PASS_RATE, filtered_top_k,
                                  masked_top_k, prefilter_top_k, top_k_over_mask)

__all__ = [
    "FilterMask",
    "MaskedTopK",
    "PREFILTER_MAX_PASS_RATE",
    "asymmetric_hamming_top_k",
    "compile_filter",
    "compile_filter_columns",
    "filter_mask",
    "filter_mask_columns",
    "filtered_top_k",
    "hamming_top_k",
    "load_library",
    "masked_top_k",
    "prefilter_top_k",
    "read_rows",
    "top_k_over_mask",
    "write_rows",
]
