"""Attribute filters: item attributes -> bitsets, filter strings -> clause masks.

Every categorical value of every filterable attribute owns one bit
("lang=en", "topic=ai", ...). Bit 0 is reserved: `__live__`, set for slots that
hold an item; deleting an item clears it. A filter string such as

    lang = "en" AND type IN ("post", "article")

compiles (in the graph, by the `LinrCompileFilter` op) to clauses: an item
passes when, for every clause, it holds at least one of the clause's bits.

    schema = AttributeSchema.from_columns({"lang": langs, "type": types})
    bits = schema.encode({"lang": langs, "type": types})   # [N, W] int32
    clauses, n = compile_filters(tf.constant(['lang = "en"']), schema.keys)
"""

from typing import Dict, List, Mapping, Sequence

import numpy as np
import tensorflow as tf

from linr_tf import ops

LIVE_KEY = "__live__"


class AttributeSchema:
  """Names the bit of every (attribute, value) pair; bit 0 is `__live__`."""

  def __init__(self, keys: Sequence[str]):
    keys = list(keys)
    if not keys or keys[0] != LIVE_KEY:
      raise ValueError(f"bit 0 must be '{LIVE_KEY}'")
    if len(set(keys)) != len(keys):
      raise ValueError("attribute bit keys must be unique")
    for key in keys[1:]:
      attr, sep, _ = key.partition("=")
      if not sep or not attr or attr.startswith("__"):
        raise ValueError(f"bad attribute bit key {key!r} (expected 'attr=value')")
    self.keys = keys
    self._bit = {k: i for i, k in enumerate(keys)}

  @property
  def num_words(self) -> int:
    return max(1, (len(self.keys) + 31) // 32)

  @property
  def attributes(self) -> List[str]:
    return sorted({k.partition("=")[0] for k in self.keys[1:]})

  @classmethod
  def from_columns(cls, columns: Mapping[str, np.ndarray], separator: str = "|"
                   ) -> "AttributeSchema":
    """One bit per distinct value seen in each column (sorted, deterministic)."""
    keys = [LIVE_KEY]
    for attr in sorted(columns):
      if "=" in attr or attr.startswith("__") or not attr:
        raise ValueError(f"invalid attribute name {attr!r}")
      values = set()
      for cell in columns[attr]:
        values.update(v for v in str(cell).split(separator) if v)
      for v in sorted(values):
        if any(c in v for c in "\"'"):
          raise ValueError(f"attribute '{attr}': value {v!r} contains a quote")
        keys.append(f"{attr}={v}")
    return cls(keys)

  def encode(self, columns: Mapping[str, np.ndarray], separator: str = "|"
             ) -> np.ndarray:
    """Bitsets [N, W] (int32 bit patterns) with `__live__` set on every row."""
    attrs = self.attributes
    missing = [a for a in attrs if a not in columns]
    if missing:
      raise ValueError(f"missing attribute column(s) {missing}")
    n = len(columns[attrs[0]]) if attrs else 0
    bits = np.zeros((n, self.num_words), np.uint32)
    bits[:, 0] |= np.uint32(1)
    for attr in attrs:
      for row, cell in enumerate(columns[attr]):
        for v in str(cell).split(separator):
          if not v:
            continue
          b = self._bit.get(f"{attr}={v}")
          if b is None:
            raise ValueError(f"attribute '{attr}': unknown value {v!r} "
                             f"(row {row})")
          bits[row, b // 32] |= np.uint32(1 << (b % 32))
    return bits.view(np.int32)


def compile_filters(filters: tf.Tensor, bit_keys: tf.Tensor):
  """Filter strings [B] -> (clauses [B, C+1, W], num_clauses [B]).

  The first clause of every query requires `__live__`, so deleted or empty
  slots never match; an empty string filters nothing else.
  """
  clauses, num_clauses = ops.compile_filter(filters, bit_keys)
  batch = tf.shape(clauses)[0]
  words = tf.shape(clauses)[2]
  live = tf.one_hot(0, words, dtype=tf.int32)                  # bit 0 of word 0
  live = tf.tile(live[None, None, :], tf.stack([batch, 1, 1]))
  return tf.concat([live, clauses], axis=1), num_clauses + 1
