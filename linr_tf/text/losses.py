"""Losses of the text dual encoder over (member, item, hard negative) embeddings.

    q = towers(members)          # [B, D]      unit norm
    p = towers(items)            # [B, D]      the engaged item of each member
    n = towers(negatives)        # [B, H, D]   the member's own hard negatives
    InfoNCELoss(temperature=0.05)(q, p, n)   # softmax over B in-batch + H hard
    BCELoss(temperature=0.05)(q, p, n)       # pointwise, same pairs
    MatryoshkaLoss(InfoNCELoss(), dims=(384, 128, 32))(q_raw, p_raw, n_raw)

InfoNCE: member i's positive is item i; its negatives are every other item
of the (global) batch and its own H hard negatives (items it saw or rated
low); in-batch items equal to the positive (same id) are masked out.
BCE: sigmoid cross-entropy of the same logits plus a learned bias, positives
and negatives averaged separately. Matryoshka: the base loss on every nested
prefix (re-normalised), averaged.
"""

from typing import Optional, Sequence

import tensorflow as tf

from linr_tf.text.tower import normalize_prefix


def _logits(q, p, n, temperature, ids=None):
  """[B, B + H] similarities / temperature, duplicate in-batch positives -inf."""
  inbatch = tf.matmul(q, p, transpose_b=True)
  if ids is not None:
    same = tf.equal(ids[:, None], ids[None, :])
    off_diagonal = tf.logical_not(tf.cast(tf.eye(tf.shape(q)[0]), tf.bool))
    inbatch = tf.where(tf.logical_and(same, off_diagonal), -1e9, inbatch)
  logits = [inbatch]
  if n is not None:
    logits.append(tf.einsum("bd,bhd->bh", q, n))
  return tf.concat(logits, axis=1) / temperature


class InfoNCELoss(tf.keras.layers.Layer):

  def __init__(self, temperature: float = 0.05, **kwargs):
    super().__init__(**kwargs)
    if temperature <= 0:
      raise ValueError("temperature must be > 0")
    self.temperature = float(temperature)

  def call(self, q, p, n=None, ids=None):
    logits = _logits(q, p, n, self.temperature, ids)
    labels = tf.range(tf.shape(q)[0])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


class BCELoss(tf.keras.layers.Layer):

  def __init__(self, temperature: float = 0.05, **kwargs):
    super().__init__(**kwargs)
    if temperature <= 0:
      raise ValueError("temperature must be > 0")
    self.temperature = float(temperature)
    self.bias = self.add_weight(name="bias", shape=[],
                                initializer=tf.keras.initializers.Constant(-5.0))

  def call(self, q, p, n=None, ids=None):
    logits = _logits(q, p, n, self.temperature, ids) + self.bias
    b = tf.shape(q)[0]
    positive = tf.pad(tf.eye(b), [[0, 0], [0, tf.shape(logits)[1] - b]])
    valid = tf.cast(logits > -1e8, tf.float32)        # masked duplicates
    pos_loss = tf.nn.softplus(-logits) * positive
    neg_loss = tf.nn.softplus(logits) * (1 - positive) * valid
    return (tf.reduce_sum(pos_loss) / tf.reduce_sum(positive)
            + tf.reduce_sum(neg_loss) / tf.maximum(tf.reduce_sum((1 - positive) * valid), 1.0))


class MatryoshkaLoss(tf.keras.layers.Layer):
  """`base` on each nested prefix of raw (unnormalised) embeddings."""

  def __init__(self, base, dims: Optional[Sequence[int]] = None, **kwargs):
    super().__init__(**kwargs)
    self.base = base
    self.dims = tuple(dims) if dims else (None,)
    if any(d is not None and d <= 0 for d in self.dims):
      raise ValueError(f"matryoshka dims must be positive, got {self.dims}")

  def call(self, q, p, n=None, ids=None):
    full = q.shape[-1]
    for d in self.dims:
      if d is not None and full is not None and d > full:
        raise ValueError(f"matryoshka dim {d} > embedding width {full}")
    losses = [self.base(normalize_prefix(q, d), normalize_prefix(p, d),
                        None if n is None else normalize_prefix(n, d), ids)
              for d in self.dims]
    return tf.add_n(losses) / len(losses)
