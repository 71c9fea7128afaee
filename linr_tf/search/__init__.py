"""Searchers: what scores an index's rows (query -> filter -> score -> top-k).

    from linr_tf import search
    searcher = search.make_searcher(vectors="float16", quantizer=encoder, rerank_factor=10)
    searcher.describe()          # 'RefineSearch(HammingSearch over 128-bit codes ..., rerank_factor=10)'

`make_searcher` picks, once, from what the index stores: vectors only ->
`ExactSearch`; codes only -> `HammingSearch` (a `SignOPORP` quantizer) or
`RaBitQSearch` (a `RaBitQ` quantizer); codes and vectors -> `RefineSearch`
over that one. Kernels: `CustomOpKernels` (the LiNR ops, CPU or GPU) or
`StockKernels` (stock TF, for the portable export).
"""

from linr_tf.search.exact import ExactSearch
from linr_tf.search.hamming import HammingSearch
from linr_tf.search.kernels import CustomOpKernels
from linr_tf.search.rabitq import RaBitQSearch
from linr_tf.search.refine import RefineSearch, rerank
from linr_tf.search.searcher import STRATEGIES, Searcher, unsupported_strategy_message
from linr_tf.search.stock_kernels import StockKernels


def make_searcher(vectors, quantizer=None, rerank_factor: int = 10, kernels=None) -> Searcher:
  """The searcher for an index holding `vectors` (a dtype name, or None) and,
  with a `quantizer`, 1-bit codes (scored asymmetrically when the quantizer
  is a `RaBitQ`: it has `query_bits`)."""
  if vectors is None and quantizer is None:
    raise ValueError("an index needs vectors, codes (a quantizer) or both")
  if quantizer is None:
    return ExactSearch(kernels)
  if hasattr(quantizer, "query_bits"):
    coarse = RaBitQSearch(quantizer, kernels)
  else:
    coarse = HammingSearch(quantizer, kernels)
  return coarse if vectors is None else RefineSearch(coarse, rerank_factor)


__all__ = ["CustomOpKernels", "ExactSearch", "HammingSearch", "RaBitQSearch", "RefineSearch", "STRATEGIES",
           "Searcher", "StockKernels", "make_searcher", "rerank",
           "unsupported_strategy_message"]
