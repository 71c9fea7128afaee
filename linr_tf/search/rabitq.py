"""`RaBitQSearch`: top-k by the asymmetric 1-bit estimate of the inner product.

    searcher = RaBitQSearch(RaBitQ(dim=64, num_bits=128, query_bits=4))
    found = searcher.search(queries, rows, passing, k=10)   # estimated <q, o>

Reads `rows.codes` (Sign-OPORP sign codes) and `rows.code_factors` (one
float32 per item) of the items' residuals from the quantizer's stored
center; queries are projected with the stored rotation and
quantized to Bq bits in-graph (`RaBitQ.encode_query`), then scored by
`asymmetric_hamming_top_k` (bit-sliced popcounts, the pass mask and
conventions of the Hamming op). Every passing code is streamed (similarity
masking), so the strategies are "auto" and "mask". Scores (`search`) are
estimates of the dot product, the kernel's estimate of <o - c, q> plus
<c, q> (see `linr_tf.quantization.rabitq`); `candidates` skips the constant.
"""

import tensorflow as tf

from linr_tf.ops.topk_ops import MaskedTopK
from linr_tf.search.searcher import Searcher


class RaBitQSearch(Searcher):
  """Asymmetric 1-bit search (FAISS `IndexRaBitQ`, no centroid, over the
  index's Hadamard rotation)."""

  strategies = ("auto", "mask")
  stores = ("codes", "code_factors")

  def __init__(self, quantizer, kernels=None):
    super().__init__(kernels)
    self.quantizer = quantizer

  def describe(self) -> str:
    return (f"RaBitQSearch over {self.quantizer.num_bits}-bit codes, "
            f"{self.quantizer.query_bits}-bit queries (similarity masking)")

  def candidates(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    """Top-k by the estimate of <o - c, q> (the order of <o, q>'s)."""
    self.check_strategy(strategy)
    planes, scales = self.quantizer.encode_query(tf.convert_to_tensor(queries, tf.float32))
    return self.kernels.asymmetric_hamming_top_k(planes, scales, rows.codes,
                                                 rows.code_factors, passing, k)

  def search(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    found = self.candidates(queries, rows, passing, k, strategy)
    offset = self.quantizer.query_offset(queries)[:, None]      # <c, q>
    scores = tf.where(found.indices >= 0, found.scores + offset, found.scores)
    return MaskedTopK(scores, found.indices, found.count)
