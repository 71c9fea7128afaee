"""`ItemIndex`: the item catalogue as model variables, searched exhaustively.

    index = ItemIndex(dim=64, bit_keys=schema.keys)
    index.assign(ids, embeddings, schema.encode(attribute_columns))
    scores, ids, count = index(query_embeddings, filters, k=10)

State (all `tf.Variable`s, saved with the model, leading dimension = capacity):
  * `embeddings` [capacity, dim] — the vectors scored (float32 here; 1-bit codes
    and several vectors per item are further stores beside this one);
  * `attributes` [capacity, W] int32 — attribute bitsets; bit 0 (`__live__`) is
    the validity mask, so a free or deleted slot is one with bit 0 clear;
  * `ids` [capacity] string — external item ids;
  * `bit_keys` [num_bits] string — what each attribute bit means.

Search path: filter strings -> `compile_filters` (a postfix program per query,
with "AND __live__" appended) -> `ops.filtered_top_k` (evaluate the programs
into pass bitmaps, then similarity masking or explicit pre-filtering, chosen
from the measured pass rate; the [B, N] score matrix is never materialised) ->
slots -> external ids.
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from linr_tf import filter as filter_lib
from linr_tf import ops


class ItemIndex(tf.keras.layers.Layer):
  """Exhaustive, attribute-pre-filtered maximum-inner-product index."""

  def __init__(self, dim: int, bit_keys: Sequence[str], capacity: int = 0,
               **kwargs):
    super().__init__(**kwargs)
    schema = filter_lib.AttributeSchema(bit_keys)
    self.dim = int(dim)
    words = schema.num_words
    self.embeddings = tf.Variable(
        tf.zeros([capacity, dim], tf.float32), shape=tf.TensorShape([None, dim]),
        trainable=False, name="embeddings")
    self.attributes = tf.Variable(
        tf.zeros([capacity, words], tf.int32),
        shape=tf.TensorShape([None, None]), trainable=False, name="attributes")
    self.ids = tf.Variable(tf.fill([capacity], ""), shape=tf.TensorShape([None]),
                           trainable=False, name="ids")
    self.bit_keys = tf.Variable(schema.keys, shape=tf.TensorShape([None]),
                                trainable=False, name="bit_keys")

  @property
  def capacity(self) -> tf.Tensor:
    return tf.shape(self.ids)[0]

  @property
  def valid(self) -> tf.Tensor:
    """[capacity] bool: slots holding a live item (bit 0 of the bitset)."""
    return tf.not_equal(tf.bitwise.bitwise_and(self.attributes[:, 0], 1), 0)

  def assign(self, ids, embeddings, attributes) -> None:
    """Replaces the whole index (index construction as a model step)."""
    ids = tf.convert_to_tensor(ids, tf.string)
    embeddings = tf.convert_to_tensor(embeddings, tf.float32)
    attributes = tf.convert_to_tensor(attributes, tf.int32)
    n = ids.shape[0]
    if embeddings.shape.rank != 2 or embeddings.shape[1] != self.dim:
      raise ValueError(f"embeddings must be [N, {self.dim}], got "
                       f"{embeddings.shape}")
    if embeddings.shape[0] != n or attributes.shape[0] != n:
      raise ValueError(f"ids ({n}), embeddings ({embeddings.shape[0]}) and "
                       f"attributes ({attributes.shape[0]}) differ in length")
    words = len(self.bit_keys.numpy())
    words = max(1, (words + 31) // 32)
    if attributes.shape.rank != 2 or attributes.shape[1] != words:
      raise ValueError(f"attributes must be [N, {words}], got {attributes.shape}")
    if not np.all(np.isfinite(embeddings.numpy())):
      raise ValueError("embeddings contain NaN or Inf")
    self.embeddings.assign(embeddings)
    self.attributes.assign(attributes)
    self.ids.assign(ids)

  def search(self, queries: tf.Tensor, filters: Optional[tf.Tensor], k,
             strategy: str = "auto") -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Top-k slots: (scores [B, k], slots [B, k] (-1 = padding), count [B]).

    `strategy`: "mask" (similarity masking), "prefilter" (explicit
    pre-filtering) or "auto" (chosen per request from the measured pass rate).
    """
    queries = tf.convert_to_tensor(queries, tf.float32)
    if filters is None:
      filters = tf.fill(tf.shape(queries)[:1], "")
    program = filter_lib.compile_filters(filters, self.bit_keys)
    return ops.filtered_top_k(queries, self.embeddings, self.attributes,
                              program, k, strategy=strategy)

  def call(self, queries: tf.Tensor, filters: Optional[tf.Tensor] = None,
           k=10, strategy: str = "auto"
           ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Top-k items: (scores [B, k], ids [B, k] ("" = padding), count [B])."""
    scores, slots, count = self.search(queries, filters, k, strategy)
    ids = tf.where(slots >= 0, tf.gather(self.ids, tf.maximum(slots, 0)), "")
    return scores, ids, count
