"""`ExactSearch`: exact dot product over the stored vectors.

    searcher = ExactSearch()
    found = searcher.search(queries, rows, passing, k=10, strategy="prefilter")

Strategies: "mask" (similarity masking: stream every item once for the whole
batch), "prefilter" (explicit pre-filtering: gather and score only passing
items) and "auto" (chosen per request from the measured pass rate); all
return the same top-k. Scores accumulate in float32 whatever the vector dtype.
"""

from linr_tf.ops.topk_ops import MaskedTopK
from linr_tf.search.searcher import STRATEGIES, Searcher


class ExactSearch(Searcher):
  """Brute-force inner product (FAISS `IndexFlatIP`), pre-filtered."""

  strategies = STRATEGIES
  stores = ("vectors",)

  def search(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    self.check_strategy(strategy)
    return self.kernels.dot_top_k(queries, rows.vectors, passing, k, strategy)
