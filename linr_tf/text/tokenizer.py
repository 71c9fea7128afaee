"""In-graph WordPiece tokenisation (tensorflow-text): [B] strings -> ids, mask.

    tok = TextTokenizer(vocab, max_length=64)        # vocab: list of wordpieces
    ids, mask = tok(tf.constant(["Toy Story (1995)"]))  # [B, T] int32, padded

BERT's rules (`tensorflow_text.BertTokenizer`): lower case and accents
stripped, split on whitespace and punctuation, greedy longest-match
WordPiece; then `[CLS] ... [SEP]`, cut to `max_length`, padded with `[PAD]`
(id 0) to the longest text of the batch. `special_tokens` (the prompts'
`<x_percentile>` markers) are single tokens: each is mapped to one of the
vocabulary's `[unusedN]` entries before WordPiece. Being part of the graph,
a SavedModel that holds this layer takes plain strings.
"""

import re
from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text


class TextTokenizer(tf.keras.layers.Layer):
  """Strings -> (token ids [B, T] int32, mask [B, T] int32)."""

  def __init__(self, vocab: Sequence[str], max_length: int = 128,
               lower_case: bool = True, special_tokens: Sequence[str] = (),
               **kwargs):
    super().__init__(**kwargs)
    vocab = list(vocab)
    if max_length < 3:
      raise ValueError("max_length must be >= 3 ([CLS] x [SEP])")
    index = {t: i for i, t in enumerate(vocab)}
    for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
      if t not in index:
        raise ValueError(f"vocabulary lacks {t}")
    if index["[PAD]"] != 0:
      raise ValueError("[PAD] must be id 0")
    unused = [t for t in vocab if re.fullmatch(r"\[unused\d+\]", t)]
    if len(special_tokens) > len(unused):
      raise ValueError(f"{len(special_tokens)} special tokens but only "
                       f"{len(unused)} [unusedN] vocabulary entries")
    self.vocab_size = len(vocab)
    self.max_length = int(max_length)
    self.special_tokens = list(special_tokens)
    # Longest first, so that no token's replacement eats a prefix of another.
    self._special = sorted(zip(self.special_tokens, unused), key=lambda p: -len(p[0]))
    self.cls_id, self.sep_id = index["[CLS]"], index["[SEP]"]
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64)),
        num_oov_buckets=1)
    self._tokenizer = tf_text.BertTokenizer(
        table, token_out_type=tf.int64, lower_case=lower_case,
        unknown_token="[UNK]", preserve_unused_token=True)

  def call(self, texts: tf.Tensor):
    texts = tf.convert_to_tensor(texts, tf.string)
    for token, slot in self._special:
      texts = tf.strings.regex_replace(texts, re.escape(token), f" {slot} ")
    pieces = self._tokenizer.tokenize(texts).merge_dims(-2, -1)   # ragged [B, None]
    pieces = pieces[:, :self.max_length - 2]
    batch = tf.shape(texts, out_type=tf.int64)[:1]
    cls = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.cls_id, tf.int64))
    sep = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.sep_id, tf.int64))
    ids = tf.concat([cls, pieces, sep], axis=1)
    mask = tf.ones_like(ids)
    return (tf.cast(ids.to_tensor(0), tf.int32), tf.cast(mask.to_tensor(0), tf.int32))
