"""The searcher protocol: what scores an index's rows, chosen once.

    searcher = make_searcher(vectors="float16", quantizer=None)   # ExactSearch
    found = searcher.search(queries, rows, passing, k)             # MaskedTopK of slots

A searcher reads a snapshot of the index's row stores (`linr_tf.index.rows.Rows`)
and a pass mask, and returns the top-k *slots* (scores [B, k], indices [B, k]
with -1 padding, count [B]); the index maps slots to item ids. Implementations,
in the spirit of FAISS's index classes:

  * `ExactSearch` — dot product over the stored vectors;
  * `HammingSearch` — 1-bit codes only, scores are cosine estimates;
  * `RefineSearch(coarse, rerank_factor)` — top r·k of a coarse searcher,
    reranked exactly with the stored vectors (FAISS's `IndexRefine`).

A new scorer (Mixture-of-Logits) is one more subclass; a sharded searcher
wraps per-shard searchers and merges their top-k. Each searcher runs on
either kernel set (`CustomOpKernels`, `StockKernels`), chosen by
`with_kernels`.
"""

import copy
from typing import Tuple

from linr_tf.ops.topk_ops import STRATEGIES, MaskedTopK
from linr_tf.search.kernels import CustomOpKernels


class Searcher:
  """Base class: scores the passing rows of a snapshot, keeps the top k."""

  # Filter strategies the searcher accepts (a subset of STRATEGIES).
  strategies: Tuple[str, ...] = ("auto",)
  # Row stores (`Rows` fields) the searcher reads besides ids / attributes.
  stores: Tuple[str, ...] = ()

  def __init__(self, kernels=None):
    self.kernels = kernels or CustomOpKernels()

  def with_kernels(self, kernels) -> "Searcher":
    """The same searcher on another kernel set (e.g. `StockKernels`)."""
    out = copy.copy(self)
    out.kernels = kernels
    return out

  def check_strategy(self, strategy: str) -> None:
    if strategy not in STRATEGIES:
      raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy not in self.strategies:
      raise ValueError(unsupported_strategy_message(self, strategy))

  def search(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    """Top-k slots for float32 [B, d] `queries` among `passing` rows."""
    raise NotImplementedError

  def candidates(self, queries, rows, passing, k, strategy: str = "auto") -> MaskedTopK:
    """Top-k slots as a first stage (`RefineSearch`): only the order and
    indices matter, so a searcher may skip turning its scores into estimates."""
    return self.search(queries, rows, passing, k, strategy)

  def describe(self) -> str:
    return type(self).__name__


def unsupported_strategy_message(searcher: Searcher, strategy=None) -> str:
  """What a request for a strategy the searcher lacks is told."""
  which = f"strategy {strategy!r}" if strategy else "this strategy"
  return (f"{which} is not supported by {searcher.describe()}; supported: "
          f"{', '.join(searcher.strategies)}")
