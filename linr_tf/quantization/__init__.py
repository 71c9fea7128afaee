"""1-bit quantized retrieval: Sign-OPORP codes and two-stage (codes + exact
rerank) search."""

from linr_tf.quantization.sign_oporp import SignOPORP, estimate_cosine, pack_bits
from linr_tf.quantization.two_stage import rerank, two_stage_search

__all__ = ["SignOPORP", "estimate_cosine", "pack_bits", "rerank", "two_stage_search"]
