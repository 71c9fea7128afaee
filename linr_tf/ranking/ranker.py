"""`Ranker`: a DCN-v2 ranker over one candidate's features.

    ranker = Ranker(vocab_sizes=[20], cross_layers=2, hidden_units=[64, 32])
    logit, rating = ranker(query [M, dq], item [M, d], dense [M, F], ids [M, C], score [M])

Input row x0 = [query, item, query * item (equal widths), dense, one
embedding per id feature, retrieval score]; then `cross_layers` TFRS
`layers.dcn.Cross` (x_{l+1} = x0 * (W x_l + b) + x_l), an MLP, and two heads:
a relevance logit (what the final list is ordered by) and a rating
prediction. One row is one (query, candidate) pair: `rank.py` runs it only on
the valid candidates of each query.
"""

from typing import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs


class Ranker(tf.keras.layers.Layer):
  """Per-candidate relevance logit and rating from query and candidate features."""

  def __init__(self, vocab_sizes: Sequence[int] = (), id_embedding_dim: int = 8,
               cross_layers: int = 2, projection_dim: int = 0,
               hidden_units: Sequence[int] = (64, 32), **kwargs):
    super().__init__(**kwargs)
    self.vocab_sizes = [int(v) for v in vocab_sizes]
    self.id_embeddings = [tf.keras.layers.Embedding(v, id_embedding_dim, name=f"rank_id_{i}")
                          for i, v in enumerate(self.vocab_sizes)]
    self.crosses = [tfrs.layers.dcn.Cross(projection_dim=projection_dim or None,
                                          kernel_initializer="glorot_uniform",
                                          name=f"cross_{i}")
                    for i in range(cross_layers)]
    self.mlp = [tf.keras.layers.Dense(u, activation="relu", name=f"mlp_{i}")
                for i, u in enumerate(hidden_units)]
    self.logit_head = tf.keras.layers.Dense(1, name="logit")
    self.rating_head = tf.keras.layers.Dense(1, name="rating")

  def features(self, query, item, dense, ids, score) -> tf.Tensor:
    """x0 [M, width]: the row the cross layers start from."""
    query = tf.convert_to_tensor(query, tf.float32)
    item = tf.cast(item, tf.float32)
    parts = [query, item]
    if query.shape[-1] == item.shape[-1]:
      parts.append(query * item)
    dense = tf.convert_to_tensor(dense, tf.float32)
    parts.append(dense)
    ids = tf.convert_to_tensor(ids, tf.int64)
    if ids.shape.rank is not None and ids.shape[-1] is not None and ids.shape[-1] != len(
        self.vocab_sizes):
      raise ValueError(f"ranker: {ids.shape[-1]} id features for {len(self.vocab_sizes)} "
                       "vocabularies")
    for i, emb in enumerate(self.id_embeddings):
      parts.append(emb(ids[:, i]))
    parts.append(tf.reshape(tf.convert_to_tensor(score, tf.float32), [-1, 1]))
    return tf.concat(parts, axis=-1)

  def call(self, query, item, dense, ids, score):
    x0 = self.features(query, item, dense, ids, score)
    x = x0
    for cross in self.crosses:
      x = cross(x0, x)
    for layer in self.mlp:
      x = layer(x)
    return self.logit_head(x)[:, 0], self.rating_head(x)[:, 0]
