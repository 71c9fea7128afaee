"""`MixtureOfLogits`: a learned, gated mixture of P x Q embedding dot products.

    mol = MixtureOfLogits(num_query=4, num_item=4, gate_units=(32,))
    q = tf.math.l2_normalize(tf.random.normal([8, 4, 16]), -1)     # [B, P, d]
    e = tf.math.l2_normalize(tf.random.normal([100, 4, 16]), -1)   # [N, Q, d]
    scores = mol(q, e)                                              # [B, N]

score(q, e) = sum_pq g_pq <q_p, e_q>, g = softmax(l), with logits
l = MLP(query embeddings) + x @ W over the P x Q dot products x. The query
part runs once per query (`gate_bias`), the dot-product part is linear
(`gate_weight`), so the same score runs inside the exhaustive search op
(`linr_tf.ops.mol_ops.mol_top_k`) without materialising [B, N, P x Q].
`gate="constant"`: g uniform (1 / PQ), so P = Q = 1 is the dot product;
`gate="linear"`: g = l, unnormalised.
"""

from typing import Sequence

import tensorflow as tf

from linr_tf.ops import mol_ops


class MixtureOfLogits(tf.keras.layers.Layer):
  """Scores [B, P, d] query embeddings against [N, Q, d] item embeddings."""

  def __init__(self, num_query: int, num_item: int, gate_units: Sequence[int] = (32,),
               gate: str = "softmax", **kwargs):
    super().__init__(**kwargs)
    if gate not in ("softmax", "constant", "linear"):
      raise ValueError(f"gate must be softmax, constant or linear, got {gate!r}")
    if not (1 <= num_query <= mol_ops.MAX_COMPONENTS and 1 <= num_item <= mol_ops.MAX_COMPONENTS):
      raise ValueError(f"num_query and num_item must be in [1, {mol_ops.MAX_COMPONENTS}], "
                       f"got {num_query} and {num_item}")
    self.num_query, self.num_item, self.gate = int(num_query), int(num_item), gate
    self.pairs = self.num_query * self.num_item
    self.gate_mlp = []
    if gate != "constant":
      self.gate_mlp = [tf.keras.layers.Dense(u, activation="relu") for u in gate_units]
      self.gate_mlp.append(tf.keras.layers.Dense(self.pairs, kernel_initializer="zeros"))

  def build(self, input_shape=None):
    self.weight = self.add_weight(
        name="gate_weight", shape=[self.pairs, self.pairs], initializer="zeros",
        trainable=self.gate != "constant")
    super().build(input_shape)

  @property
  def softmax(self) -> bool:
    return self.gate != "linear"

  def gate_bias(self, queries):
    """Per-query gate logits [B, PQ] (zeros for the constant gate)."""
    queries = tf.convert_to_tensor(queries, tf.float32)
    self._check(queries, self.num_query, "query")
    if not self.built:
      self.build(None)
    if not self.gate_mlp:
      return tf.zeros(tf.stack([tf.shape(queries)[0], self.pairs]))
    x = tf.reshape(queries, [-1, self.num_query * queries.shape[-1]])
    for layer in self.gate_mlp:
      x = layer(x)
    return x

  def gate_weight(self):
    """Gate logits per dot product [PQ, PQ]."""
    if not self.built:
      self.build(None)
    return tf.convert_to_tensor(self.weight)

  def call(self, queries, items):
    """Score matrix [B, N] of queries [B, P, d] against items [N, Q, d]."""
    items = tf.convert_to_tensor(items)
    self._check(items, self.num_item, "item")
    return mol_ops.mol_score_matrix(queries, items, self.gate_bias(queries),
                                    self.gate_weight(), self.softmax)

  def score_candidates(self, queries, candidates):
    """Scores [B, K] of queries [B, P, d] against their own candidates [B, K, Q, d]."""
    return mol_ops.mol_scores(queries, candidates, self.gate_bias(queries),
                              self.gate_weight(), self.softmax)

  def top_k(self, queries, items, mask, k):
    """Exhaustive filtered top-k over items [N, Q, d] (op LinrMoLTopK)."""
    return mol_ops.mol_top_k(queries, items, self.gate_bias(queries), self.gate_weight(),
                             mask, k, softmax=self.softmax)

  @staticmethod
  def _check(x, want, what):
    if x.shape.rank != 3:
      raise ValueError(f"MixtureOfLogits: {what} embeddings must be [*, {want}, d], "
                       f"got shape {x.shape}")
    if x.shape[1] is not None and x.shape[1] != want:
      raise ValueError(f"MixtureOfLogits: expected {want} {what} embeddings, got "
                       f"{x.shape[1]} (shape {x.shape})")
