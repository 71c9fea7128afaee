"""Two-tower encoders: raw features -> L2-normalised embeddings of width `d`.

    tower = Tower(cfg.item_features, vocabularies, dim=64, name="item_tower")
    emb = tower({"item_id": tf.constant(["p1"]), "topic": tf.constant(["ai|ml"]),
                 ...})                       # [1, 64], unit norm

Each feature is embedded on its own (`FeatureEmbedding`): ids and categorical
values through `StringLookup` + `Embedding` (multi-valued ones averaged), numeric
values through `Discretization` + `Embedding`; the tower concatenates them, runs
an MLP and normalises.
"""

from typing import Dict, List, Mapping, Sequence

import tensorflow as tf

from linr_tf.config import FeatureSpec


class FeatureEmbedding(tf.keras.layers.Layer):
  """Embeds one raw feature column ([B] strings or floats) into [B, dim]."""

  def __init__(self, spec: FeatureSpec, vocabulary: Sequence[str] = (),
               separator: str = "|", **kwargs):
    super().__init__(name=f"embed_{spec.name}", **kwargs)
    self.spec = spec
    self.separator = separator
    if spec.is_numeric:
      self.to_index = tf.keras.layers.Discretization(
          bin_boundaries=list(spec.boundaries))
      size = len(spec.boundaries) + 1
    else:
      if not len(vocabulary):
        raise ValueError(f"feature '{spec.name}' has an empty vocabulary")
      # Index 0 is the out-of-vocabulary bucket: unseen ids (new users, cold
      # items) still embed, to a learned "unknown" vector.
      self.to_index = tf.keras.layers.StringLookup(
          vocabulary=list(vocabulary), mask_token=None, num_oov_indices=1)
      size = len(vocabulary) + 1
    self.embedding = tf.keras.layers.Embedding(size, spec.embedding_dim)

  def call(self, x: tf.Tensor) -> tf.Tensor:
    if self.spec.is_numeric:
      return self.embedding(self.to_index(tf.cast(x, tf.float32)))
    if not self.spec.multivalued:
      return self.embedding(self.to_index(x))
    tokens = tf.strings.split(x, self.separator)                # ragged [B, None]
    vectors = tf.ragged.map_flat_values(
        lambda t: self.embedding(self.to_index(t)), tokens)
    total = tf.reduce_sum(vectors, axis=1)
    count = tf.cast(tf.maximum(tokens.row_lengths(), 1), total.dtype)
    return total / count[:, None]


class Tower(tf.keras.layers.Layer):
  """Feature embeddings -> MLP -> L2-normalised embedding of width `dim`."""

  def __init__(self, features: List[FeatureSpec],
               vocabularies: Mapping[str, Sequence[str]], dim: int,
               hidden_units: Sequence[int] = (128,), separator: str = "|",
               **kwargs):
    super().__init__(**kwargs)
    self.feature_names = [f.name for f in features]
    self.embeddings = [
        FeatureEmbedding(f, vocabularies.get(f.name, ()), separator)
        for f in features
    ]
    self.mlp = [tf.keras.layers.Dense(u, activation="relu") for u in hidden_units]
    self.out = tf.keras.layers.Dense(dim)

  def call(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    missing = [n for n in self.feature_names if n not in features]
    if missing:
      raise ValueError(f"{self.name}: missing input feature(s) {missing}")
    x = tf.concat([e(features[n]) for n, e in
                   zip(self.feature_names, self.embeddings)], axis=-1)
    for layer in self.mlp:
      x = layer(x)
    return tf.math.l2_normalize(self.out(x), axis=-1)
