"""`BertEncoder`: the BERT / MiniLM Transformer encoder as Keras layers.

    enc = BertEncoder(BertConfig.minilm_l6())            # all-MiniLM-L6-v2 shape
    load_safetensors_weights(enc, minilm.read_weights())  # pretrained weights
    hidden = enc(ids, mask)                               # [B, T, 384]

    small = BertEncoder(BertConfig.small(vocab_size=30522))   # from scratch

Post-layer-norm blocks (self-attention, then a GELU feed-forward), learned
absolute positions and token types, as in BERT; `causal=True` makes each
token attend only to earlier ones (for last-token pooling experiments).
"""

import dataclasses
import math
from typing import Mapping

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class BertConfig:
  vocab_size: int = 30522
  hidden_size: int = 384
  num_layers: int = 6
  num_heads: int = 12
  intermediate_size: int = 1536
  max_position: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  dropout: float = 0.0
  causal: bool = False

  @classmethod
  def minilm_l6(cls) -> "BertConfig":
    """sentence-transformers/all-MiniLM-L6-v2."""
    return cls()

  @classmethod
  def small(cls, vocab_size: int, hidden_size: int = 64, num_layers: int = 2,
            num_heads: int = 4, max_position: int = 256, **kw) -> "BertConfig":
    """A small encoder trained from scratch."""
    return cls(vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
               num_heads=num_heads, intermediate_size=4 * hidden_size,
               max_position=max_position, layer_norm_eps=1e-6, **kw)

  def __post_init__(self):
    if self.hidden_size % self.num_heads:
      raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                       f"num_heads {self.num_heads}")


def _dense(units, name, activation=None):
  return tf.keras.layers.Dense(
      units, activation=activation, name=name,
      kernel_initializer=tf.keras.initializers.TruncatedNormal(stddev=0.02))


class TransformerBlock(tf.keras.layers.Layer):
  """Multi-head self-attention + feed-forward, each followed by add & norm."""

  def __init__(self, cfg: BertConfig, **kwargs):
    super().__init__(**kwargs)
    h = cfg.hidden_size
    self.cfg = cfg
    self.query, self.key, self.value = (_dense(h, n) for n in ("query", "key", "value"))
    self.attention_out = _dense(h, "attention_output")
    self.attention_norm = tf.keras.layers.LayerNormalization(
        epsilon=cfg.layer_norm_eps, name="attention_norm")
    self.intermediate = _dense(cfg.intermediate_size, "intermediate",
                               activation=lambda x: tf.nn.gelu(x, approximate=False))
    self.output_dense = _dense(h, "output")
    self.output_norm = tf.keras.layers.LayerNormalization(
        epsilon=cfg.layer_norm_eps, name="output_norm")
    self.dropout = tf.keras.layers.Dropout(cfg.dropout)

  def _heads(self, x):
    b, t = tf.shape(x)[0], tf.shape(x)[1]
    x = tf.reshape(x, [b, t, self.cfg.num_heads, self.cfg.hidden_size // self.cfg.num_heads])
    return tf.transpose(x, [0, 2, 1, 3])                    # [B, heads, T, d]

  def call(self, x, bias, training=False):
    q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
    d = self.cfg.hidden_size // self.cfg.num_heads
    scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(d)
    scores += tf.cast(bias, scores.dtype)      # -1e9 becomes -inf in float16
    attn = self.dropout(tf.nn.softmax(scores, axis=-1), training=training)
    ctx = tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3])
    ctx = tf.reshape(ctx, tf.shape(x))
    x = self.attention_norm(x + self.dropout(self.attention_out(ctx), training=training))
    y = self.output_dense(self.intermediate(x))
    return self.output_norm(x + self.dropout(y, training=training))


class BertEncoder(tf.keras.layers.Layer):
  """(ids [B, T] int32, mask [B, T]) -> hidden states [B, T, hidden_size]."""

  def __init__(self, cfg: BertConfig, **kwargs):
    super().__init__(**kwargs)
    self.cfg = cfg
    init = lambda: tf.keras.initializers.TruncatedNormal(stddev=0.02)  # noqa: E731
    self.word_embeddings = tf.keras.layers.Embedding(
        cfg.vocab_size, cfg.hidden_size, embeddings_initializer=init(), name="word_embeddings")
    self.position_embeddings = tf.keras.layers.Embedding(
        cfg.max_position, cfg.hidden_size, embeddings_initializer=init(),
        name="position_embeddings")
    self.type_embeddings = tf.keras.layers.Embedding(
        cfg.type_vocab_size, cfg.hidden_size, embeddings_initializer=init(),
        name="token_type_embeddings")
    self.embedding_norm = tf.keras.layers.LayerNormalization(
        epsilon=cfg.layer_norm_eps, name="embedding_norm")
    self.dropout = tf.keras.layers.Dropout(cfg.dropout)
    self.blocks = [TransformerBlock(cfg, name=f"layer_{i}") for i in range(cfg.num_layers)]

  def call(self, ids, mask, training=False):
    t = tf.shape(ids)[1]
    with tf.control_dependencies([tf.debugging.assert_less_equal(
        t, self.cfg.max_position, message="text longer than max_position tokens")]):
      positions = tf.range(t)
    x = (self.word_embeddings(ids) + self.position_embeddings(positions)[None]
         + self.type_embeddings(tf.zeros_like(ids)))
    x = self.dropout(self.embedding_norm(x), training=training)
    keep = tf.cast(mask, tf.float32)[:, None, None, :]          # [B, 1, 1, T]
    if self.cfg.causal:
      keep = keep * tf.linalg.band_part(tf.ones([t, t]), -1, 0)[None, None]
    bias = (1.0 - keep) * -1e9
    for block in self.blocks:
      x = block(x, bias, training=training)
    return x


def _pt_names(cfg: BertConfig):
  """(layer variable, PyTorch BertModel parameter name, transpose?) triples."""
  out = [("word_embeddings", "embeddings.word_embeddings.weight"),
         ("position_embeddings", "embeddings.position_embeddings.weight"),
         ("token_type_embeddings", "embeddings.token_type_embeddings.weight"),
         ("embedding_norm/gamma", "embeddings.LayerNorm.weight"),
         ("embedding_norm/beta", "embeddings.LayerNorm.bias")]
  for i in range(cfg.num_layers):
    p = f"encoder.layer.{i}."
    for ours, theirs in (("query", "attention.self.query"), ("key", "attention.self.key"),
                         ("value", "attention.self.value"),
                         ("attention_output", "attention.output.dense"),
                         ("intermediate", "intermediate.dense"), ("output", "output.dense")):
      out += [(f"layer_{i}/{ours}/kernel", p + theirs + ".weight"),
              (f"layer_{i}/{ours}/bias", p + theirs + ".bias")]
    for ours, theirs in (("attention_norm", "attention.output.LayerNorm"),
                         ("output_norm", "output.LayerNorm")):
      out += [(f"layer_{i}/{ours}/gamma", p + theirs + ".weight"),
              (f"layer_{i}/{ours}/beta", p + theirs + ".bias")]
  return out


def load_bert_weights(encoder: BertEncoder, tensors: Mapping[str, np.ndarray]) -> None:
  """Assigns a PyTorch `BertModel` state dict (name -> array, e.g. from a
  `.safetensors` file) to `encoder` (built on first use). Dense kernels are
  transposed ([out, in] -> [in, out]); every variable must be found with its
  shape, and the pooler / position-id buffers are ignored."""
  if not encoder.built:
    encoder(tf.zeros([1, 2], tf.int32), tf.ones([1, 2], tf.int32))
  variables = {"word_embeddings": encoder.word_embeddings.embeddings,
               "position_embeddings": encoder.position_embeddings.embeddings,
               "token_type_embeddings": encoder.type_embeddings.embeddings,
               "embedding_norm/gamma": encoder.embedding_norm.gamma,
               "embedding_norm/beta": encoder.embedding_norm.beta}
  for i, block in enumerate(encoder.blocks):
    for name in ("query", "key", "value", "attention_output", "intermediate", "output"):
      layer = getattr(block, {"attention_output": "attention_out",
                              "output": "output_dense"}.get(name, name))
      variables[f"layer_{i}/{name}/kernel"] = layer.kernel
      variables[f"layer_{i}/{name}/bias"] = layer.bias
    for name in ("attention_norm", "output_norm"):
      layer = getattr(block, name)
      variables[f"layer_{i}/{name}/gamma"] = layer.gamma
      variables[f"layer_{i}/{name}/beta"] = layer.beta
  for ours, theirs in _pt_names(encoder.cfg):
    if ours not in variables:
      raise ValueError(f"encoder has no variable '{ours}' (has {sorted(variables)[:8]}...)")
    if theirs not in tensors:
      raise ValueError(f"weights lack '{theirs}'")
    value = np.asarray(tensors[theirs], np.float32)
    if ours.endswith("/kernel"):
      value = value.T
    var = variables[ours]
    if tuple(var.shape) != value.shape:
      raise ValueError(f"'{theirs}': shape {value.shape} != encoder's {tuple(var.shape)}")
    var.assign(value)
