"""1-bit quantized retrieval: Sign-OPORP codes, the asymmetric RaBitQ-like
estimator over them, and two-stage (codes + exact rerank) search; the
searchers themselves are in `linr_tf.search`."""

from linr_tf.quantization.rabitq import RaBitQ
from linr_tf.quantization.sign_oporp import SignOPORP, estimate_cosine, pack_bits
from linr_tf.quantization.two_stage import two_stage_search

__all__ = ["RaBitQ", "SignOPORP", "estimate_cosine", "pack_bits", "two_stage_search"]
