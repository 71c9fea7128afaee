"""`TextTower`: plain strings -> embeddings (tokeniser, encoder, pooling).

    tower = TextTower(TextTokenizer(vocab), BertEncoder(BertConfig.small(len(vocab))))
    tower(tf.constant(["Heat; genres: Action, Crime"]))    # [1, 64], unit norm
    tower.encode(texts)                                     # unnormalised, full width

`output_dim` adds a linear projection after pooling; `prefix_dim` serves
only the first `prefix_dim` dimensions (a Matryoshka prefix), re-normalised.
One tower can serve both sides (the paper's shared encoder).
"""

from typing import Optional

import tensorflow as tf

from linr_tf.text.pooling import Pooling


def normalize_prefix(x: tf.Tensor, dim: Optional[int]) -> tf.Tensor:
  """The first `dim` dimensions of `x` (all if None), L2-normalised."""
  if dim is not None:
    x = x[..., :dim]
  return tf.math.l2_normalize(x, axis=-1)


class TextTower(tf.keras.layers.Layer):

  def __init__(self, tokenizer, encoder, pooling: str = "mean",
               output_dim: Optional[int] = None, prefix_dim: Optional[int] = None,
               **kwargs):
    super().__init__(**kwargs)
    self.tokenizer = tokenizer
    self.encoder = encoder
    self.pooling = Pooling(pooling)
    self.projection = (tf.keras.layers.Dense(output_dim, use_bias=False, name="projection")
                       if output_dim else None)
    self.full_dim = int(output_dim or encoder.cfg.hidden_size)
    if prefix_dim is not None and not 0 < prefix_dim <= self.full_dim:
      raise ValueError(f"prefix_dim must be in 1..{self.full_dim}, got {prefix_dim}")
    self.prefix_dim = prefix_dim

  @property
  def dim(self) -> int:
    return self.prefix_dim or self.full_dim

  def encode(self, texts, training=False):
    ids, mask = self.tokenizer(texts)
    x = self.pooling(self.encoder(ids, mask, training=training), mask)
    return self.projection(x) if self.projection is not None else x

  def call(self, texts, training=False):
    return normalize_prefix(self.encode(texts, training=training), self.prefix_dim)
