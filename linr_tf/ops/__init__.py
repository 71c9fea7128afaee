"""LiNR-TF custom ops: filter compilation and filtered top-k.

The op library is `//custom_ops:_linr_ops.so`, loaded on first use (see
`load_library` for where it is looked up). No Keras import happens here.
"""

from linr_tf.ops._library import load_library
from linr_tf.ops.filter_ops import CompiledFilter, compile_filter
from linr_tf.ops.topk_ops import MaskedTopK, masked_top_k

__all__ = [
    "CompiledFilter",
    "MaskedTopK",
    "compile_filter",
    "load_library",
    "masked_top_k",
]
