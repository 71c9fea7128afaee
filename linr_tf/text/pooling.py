"""`Pooling`: token states [B, T, H] + mask [B, T] -> one vector per text.

    Pooling("mean")(hidden, mask)   # average of the real tokens (the default)
    Pooling("last")(hidden, mask)   # the last real token ([SEP] for BERT ids)
    Pooling("cls")(hidden, mask)    # the first token ([CLS])
"""

import tensorflow as tf

MODES = ("mean", "last", "cls")


class Pooling(tf.keras.layers.Layer):

  def __init__(self, mode: str = "mean", **kwargs):
    super().__init__(**kwargs)
    if mode not in MODES:
      raise ValueError(f"pooling must be one of {MODES}, got '{mode}'")
    self.mode = mode

  def call(self, hidden, mask):
    mask = tf.cast(mask, hidden.dtype)
    if self.mode == "mean":
      total = tf.reduce_sum(hidden * mask[..., None], axis=1)
      return total / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1e-9)
    if self.mode == "cls":
      return hidden[:, 0]
    last = tf.maximum(tf.cast(tf.reduce_sum(mask, axis=1), tf.int32) - 1, 0)
    return tf.gather(hidden, last, axis=1, batch_dims=1)
