"""`HammingSearch`: top-k by matching bits of 1-bit Sign-OPORP codes.

    searcher = HammingSearch(SignOPORP(dim=64, num_bits=128))
    found = searcher.search(queries, rows, passing, k=10)     # cosine estimates
    found = searcher.match(query_codes, rows, passing, k=10)  # matching bits

Queries are encoded in-graph with the index's encoder. Every passing code is
streamed (similarity masking), so the strategies are "auto" and "mask".
"""

import tensorflow as tf

from linr_tf.ops.topk_ops import MaskedTopK
from linr_tf.search.searcher import Searcher


class HammingSearch(Searcher):
  """Symmetric 1-bit search (FAISS `IndexBinaryFlat` over Sign-OPORP codes)."""

  strategies = ("auto", "mask")
  stores = ("codes",)

  def __init__(self, quantizer, kernels=None):
    super().__init__(kernels)
    self.quantizer = quantizer

  def describe(self) -> str:
    return f"HammingSearch over {self.quantizer.num_bits}-bit codes (similarity masking)"

  def match(self, query_codes, rows, passing, k) -> MaskedTopK:
    """Top-k by matching bits for packed int32 [B, m/32] `query_codes`."""
    return self.kernels.hamming_top_k(query_codes, rows.codes, passing, k)

  def candidates(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    """Top-k by matching bits (the cosine estimate is monotone in them)."""
    self.check_strategy(strategy)
    return self.match(self.quantizer.encode(tf.convert_to_tensor(queries, tf.float32)),
                      rows, passing, k)

  def search(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    found = self.candidates(queries, rows, passing, k, strategy)
    scores = tf.where(found.indices >= 0, self.quantizer.estimate_cosine(found.scores),
                      found.scores)
    return MaskedTopK(scores, found.indices, found.count)
