"""Portable export: the same search signatures built from stock TF ops only.

    path = export_portable(model, "out/run/export_portable")   # -> .../1
    # loads with plain tf.saved_model.load, no LiNR op library: an unmodified
    # TensorFlow Serving binary serves it.

The fast export (`linr_tf.export`) runs the filter compiler and the top-k as
custom ops. Here the index's own searcher (exact, 1-bit codes, or codes +
exact rerank) runs on `StockKernels` (`linr_tf/search/stock_kernels.py`):
the filter is parsed in the graph with stock string ops and search writes the
[B, N] score matrix (slower, more memory) but returns the same top-k, for
every index config (float32 / float16 / bfloat16 vectors, codes only, codes
+ vectors).

Filter language supported here: `attr = value`, `attr IN (v1, v2, ...)`,
joined by `AND`; anything else is an InvalidArgumentError. The portable model
serves `serving_default` and `retrieve_with_options` only: live updates need
the atomic row-write op.
"""

import tensorflow as tf

from linr_tf.export import RetrievalModule, save_module
from linr_tf.index.item_index import search_slots, slots_to_ids
from linr_tf.column_filters import FilterColumns
from linr_tf.index.rows import Rows
from linr_tf.search.stock_kernels import StockKernels


class PortableIndex(tf.Module):
  """An `ItemIndex`'s variables searched by its own searcher on stock ops."""

  supports_updates = False

  def __init__(self, index):
    super().__init__(name="portable_index")
    self.dim = index.dim
    self.layout = index.layout
    self.ids, self.versions, self.attributes = index.ids, index.versions, index.attributes
    self.vectors, self.codes = index.vectors, index.codes
    self.code_factors = index.code_factors
    self.numbers, self.value_ids = index.numbers, index.value_ids
    self.bit_keys = index.bit_keys
    self.quantizer = index.quantizer
    self.searcher = index.searcher.with_kernels(StockKernels())
    # Column attributes are not evaluated on stock ops: their predicates are
    # rejected by name (StockKernels.pass_mask).
    self.number_columns = getattr(index, "number_columns", None)
    self.value_columns = getattr(index, "value_columns", None)

  def __call__(self, queries, filters=None, k=10, strategy="auto"):
    rows = self.searcher.kernels.read(self.layout, Rows(
        self.ids, self.versions, self.attributes, self.vectors, self.codes,
        self.code_factors, self.numbers, self.value_ids))
    columns = None
    if self.number_columns is not None:
      columns = FilterColumns(self.number_columns, self.value_columns, None, None, None, None)
    scores, slots, count = search_slots(self.searcher, rows, self.bit_keys, queries,
                                        filters, k, strategy, columns)
    return scores, slots_to_ids(rows.ids, slots), count


def export_portable(model, base_path: str, version: int = None) -> str:
  """Writes `<base_path>/<version>` with stock ops only; returns the path."""
  module = RetrievalModule(model, index=PortableIndex(model.index),
                           name="linr_retrieval_portable")
  return save_module(module, base_path, version)
