"""Attribute filters: item attributes -> bitsets, filter strings -> filter programs.

Every filterable attribute owns bits of the item attribute bitset; the list of
bit names (`AttributeSchema.keys`, the op's `bit_keys`) defines the layout:

  "__live__"        bit 0, set for slots that hold an item (deleting clears it)
  "attr=value"      one bit per categorical value ("lang=en", "topic=ai"); a
                    multi-valued item ("ai|ml") sets several bits of `attr`
  "attr@[lo,hi)"    one bit per bucket lo <= x < hi of a numeric attribute; an
                    empty bound is an open end. Boundaries (1, 6, 24) give
                    "age_hours@[,1)", "age_hours@[1,6)", "age_hours@[6,24)",
                    "age_hours@[24,)". Numbers are written by `format_number`
                    ("24", "-1.5", "1e-05"); every item sets exactly one bucket.

A filter string such as

    lang = "en" AND (topic ALL (ai, ml) OR age_hours < 24) AND type != "ad"

compiles (in the graph, op `LinrCompileFilter`) to a postfix program over these
bits (custom_ops/filter/filter_program.h). Range comparisons must use bucket
boundaries: `age_hours < 24` and `age_hours >= 24` are exact; `<=`, `>` and
non-boundary thresholds are rejected.

    schema = AttributeSchema.from_columns({"lang": langs, "topic": topics},
                                          {"age_hours": (ages, [1, 6, 24])})
    bits = schema.encode({"lang": langs, "topic": topics, "age_hours": ages})
    program = compile_filters(tf.constant(['lang = "en"']), schema.keys)
"""

import itertools
import math
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from linr_tf import columns as columns_lib
from linr_tf import ops
from linr_tf.ops import filter_ops

LIVE_KEY = "__live__"
FILTER_KEYWORDS = ("and", "or", "not", "in", "all", "between")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
_BUCKET = re.compile(r"\[([^,\[\]()]*),([^,\[\]()]*)\)\Z")
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


def set_live(bits):
  """`bits` [N, W] int32 with the `__live__` bit (bit 0 of word 0) set.

  The one place that writes the live bit: numpy arrays stay numpy, anything
  else becomes a tensor. Clearing the whole bitset is what deletes an item.
  """
  if isinstance(bits, np.ndarray):
    out = bits.astype(np.int32, copy=True)
    out[:, 0] |= np.int32(1)
    return out
  bits = tf.convert_to_tensor(bits, tf.int32)
  word = tf.one_hot(0, tf.shape(bits)[1], on_value=1, off_value=0, dtype=tf.int32)
  return tf.bitwise.bitwise_or(bits, word[None, :])


def is_live(bits):
  """[N] bool: rows of `bits` [N, W] whose `__live__` bit is set (numpy or tf)."""
  if isinstance(bits, np.ndarray):
    return (bits[:, 0] & 1) != 0
  return tf.not_equal(tf.bitwise.bitwise_and(bits[:, 0], 1), 0)


def format_number(x: float) -> str:
  """Canonical text of a bucket boundary: "24", "-1.5", "1e-05" (no '+')."""
  x = float(x)
  if not math.isfinite(x):
    raise ValueError(f"bucket boundary must be finite, got {x}")
  if x.is_integer() and abs(x) < 2**53:
    return str(int(x))
  return repr(x).replace("e+", "e")


def bucket_keys(attribute: str, boundaries: Sequence[float]) -> List[str]:
  """Bit keys of the len(boundaries) + 1 buckets of a numeric attribute."""
  bounds = [format_number(b) for b in _check_boundaries(attribute, boundaries)]
  edges = [""] + bounds + [""]
  return [f"{attribute}@[{lo},{hi})" for lo, hi in zip(edges[:-1], edges[1:])]


def _check_boundaries(attribute: str, boundaries: Sequence[float]) -> Tuple[float, ...]:
  values = tuple(float(b) for b in boundaries)
  if not all(math.isfinite(b) for b in values):
    raise ValueError(f"attribute '{attribute}': bucket boundaries must be finite")
  if any(a >= b for a, b in zip(values[:-1], values[1:])):
    raise ValueError(f"attribute '{attribute}': bucket boundaries must be strictly "
                     f"increasing, got {list(boundaries)}")
  return values


def _check_filterable_name(attribute: str) -> None:
  """Names a filter can spell: bare word, not a keyword, not reserved."""
  if (not isinstance(attribute, str) or not _ATTRIBUTE_NAME.match(attribute)
      or attribute.startswith("__") or attribute.lower() in FILTER_KEYWORDS):
    raise ValueError(
        f"invalid attribute name {attribute!r}: use [A-Za-z0-9_.-]+, not starting "
        f"with '__' and not a filter keyword ({', '.join(FILTER_KEYWORDS)})")


def parse_key(key: str):
  """("categorical", attr, value) or ("numeric", attr, (lo, hi)) of a bit key."""
  eq, at = key.find("="), key.find("@")
  if at >= 0 and (eq < 0 or at < eq):
    attr, spec = key[:at], key[at + 1:]
    match = _BUCKET.match(spec)
    bounds = match.groups() if match else None
    if (not attr or bounds is None
        or not all(b == "" or _NUMBER.match(b) for b in bounds)):
      raise ValueError(f"bad numeric bucket key {key!r} (expected 'attr@[lo,hi)')")
    lo = float(bounds[0]) if bounds[0] else -math.inf
    hi = float(bounds[1]) if bounds[1] else math.inf
    return "numeric", attr, (lo, hi)
  attr, sep, value = key.partition("=")
  if not sep or not attr:
    raise ValueError(f"bad attribute bit key {key!r} (expected 'attr=value' or "
                     "'attr@[lo,hi)')")
  return "categorical", attr, value


class AttributeSchema:
  """Names every bit of the item attribute bitset; bit 0 is `__live__`."""

  def __init__(self, keys: Sequence[str]):
    keys = list(keys)
    if not keys or keys[0] != LIVE_KEY:
      raise ValueError(f"bit 0 must be '{LIVE_KEY}'")
    if len(set(keys)) != len(keys):
      raise ValueError("attribute bit keys must be unique")
    self.keys = keys
    self._value_bit: Dict[Tuple[str, str], int] = {}
    buckets: Dict[str, List[Tuple[float, float, int]]] = {}
    categorical = set()
    for bit, key in enumerate(keys[1:], start=1):
      kind, attr, payload = parse_key(key)
      if attr.startswith("__"):
        raise ValueError(f"bad attribute bit key {key!r}: '__' names are reserved")
      if kind == "categorical":
        categorical.add(attr)
        self._value_bit[(attr, payload)] = bit
      else:
        buckets.setdefault(attr, []).append(payload + (bit,))
    both = categorical & set(buckets)
    if both:
      raise ValueError(f"attribute(s) {sorted(both)} have both categorical and "
                       "numeric keys")
    self._categorical = sorted(categorical)
    # Numeric attribute -> (boundaries [n], bit of bucket i [n + 1]).
    self._numeric: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    for attr, entries in buckets.items():
      entries.sort()
      lows = [lo for lo, _, _ in entries]
      highs = [hi for _, hi, _ in entries]
      if (lows[0] != -math.inf or highs[-1] != math.inf
          or any(h != l for h, l in zip(highs[:-1], lows[1:]))
          or any(l >= h for l, h in zip(lows, highs))):
        raise ValueError(f"buckets of numeric attribute '{attr}' must tile the "
                         "number line: [,b1), [b1,b2), ..., [bn,)")
      self._numeric[attr] = (np.array(lows[1:], np.float64),
                             np.array([bit for _, _, bit in entries], np.int64))

  @property
  def num_words(self) -> int:
    return max(1, (len(self.keys) + 31) // 32)

  @property
  def attributes(self) -> List[str]:
    """All attribute names (categorical and numeric), sorted."""
    return sorted(self._categorical + list(self._numeric))

  @property
  def categorical_attributes(self) -> List[str]:
    return list(self._categorical)

  @property
  def numeric_attributes(self) -> Dict[str, Tuple[float, ...]]:
    """Numeric attribute -> its bucket boundaries."""
    return {a: tuple(float(b) for b in bounds)
            for a, (bounds, _) in sorted(self._numeric.items())}

  def values(self, attribute: str) -> List[str]:
    """The known values of a categorical attribute, in bit order."""
    if attribute not in self._categorical:
      raise ValueError(f"'{attribute}' is not a categorical attribute of this schema "
                       f"(categorical: {self._categorical})")
    return [v for (a, v), _ in sorted(self._value_bit.items(), key=lambda e: e[1])
            if a == attribute]

  def value_bits(self) -> Dict[Tuple[str, str], int]:
    """(attribute, value) -> bit of every categorical value."""
    return dict(self._value_bit)

  def buckets(self, attribute: str) -> Tuple[np.ndarray, np.ndarray]:
    """(boundaries float64 [n], bit of bucket i int64 [n + 1]) of a numeric
    attribute; bucket i holds boundaries[i-1] <= x < boundaries[i]."""
    if attribute not in self._numeric:
      raise ValueError(f"'{attribute}' is not a numeric attribute of this schema "
                       f"(numeric: {sorted(self._numeric)})")
    bounds, bits = self._numeric[attribute]
    return bounds.copy(), bits.copy()

  @staticmethod
  def numeric_values(attribute: str, values) -> np.ndarray:
    """`values` as float64 [N]; ValueError naming the attribute (and the row of
    a NaN) otherwise."""
    return _numeric_values(attribute, values)

  @classmethod
  def from_columns(cls, categorical: Mapping[str, np.ndarray],
                   numeric: Optional[Mapping[str, Tuple[np.ndarray, Sequence[float]]]] = None,
                   separator: str = "|") -> "AttributeSchema":
    """Schema of categorical columns and bucketed numeric columns.

    Categorical: one bit per distinct value seen (values split on `separator`;
    sorted, deterministic). Numeric: `numeric[attr] = (values, boundaries)`
    gives one bit per bucket (values are only checked for NaN). Attributes are
    laid out in name order.
    """
    if isinstance(numeric, str):
      raise TypeError("from_columns(categorical, numeric=None, separator='|'): pass "
                      "the separator by keyword")
    numeric = dict(numeric or {})
    overlap = set(categorical) & set(numeric)
    if overlap:
      raise ValueError(f"attribute(s) {sorted(overlap)} given as both categorical "
                       "and numeric")
    keys = [LIVE_KEY]
    for attr in sorted(set(categorical) | set(numeric)):
      _check_filterable_name(attr)
      if attr in numeric:
        values, boundaries = numeric[attr]
        _numeric_values(attr, values)  # NaN check
        keys.extend(bucket_keys(attr, boundaries))
        continue
      # Any text is a value (quotes, backslashes, commas, unicode): filters
      # quote and escape it; the key is "attr=" + the value as given.
      flat, _ = columns_lib.split_cells(categorical[attr], separator)
      keys.extend(f"{attr}={v}" for v in sorted(set(flat)))
    return cls(keys)

  def encode(self, columns: Mapping[str, np.ndarray], separator: str = "|"
             ) -> np.ndarray:
    """Bitsets [N, W] (int32 bit patterns) with `__live__` set on every row.

    `columns` holds every attribute of the schema: categorical cells (values
    split on `separator`) and numeric values (or the `(values, boundaries)`
    pairs given to `from_columns`). NaN numeric values raise ValueError.
    """
    attrs = self.attributes
    missing = [a for a in attrs if a not in columns]
    if missing:
      raise ValueError(f"missing attribute column(s) {missing}")
    lengths = {a: len(self._column_values(a, columns[a])) for a in attrs}
    if len(set(lengths.values())) > 1:
      raise ValueError(f"attribute columns differ in length: {lengths}")
    n = lengths[attrs[0]] if attrs else 0
    bits = np.zeros((n, self.num_words), np.uint32)
    for attr in attrs:
      column = self._column_values(attr, columns[attr])
      if attr in self._numeric:
        bounds, bucket_bits = self._numeric[attr]
        values = _numeric_values(attr, column)
        # side="right": a value equal to a boundary b opens bucket [b, next).
        bit = bucket_bits[np.searchsorted(bounds, values, side="right")]
        np.bitwise_or.at(bits, (np.arange(n), bit // 32),
                         (np.uint32(1) << (bit % 32).astype(np.uint32)))
        continue
      # Vectorised: one split per column, values mapped by dict in C loops.
      flat, counts = columns_lib.split_cells(column, separator, keep_empty=True)
      bit = columns_lib.lookup_ids(self._attribute_bits(attr), flat)
      unknown = np.flatnonzero(bit == -1)
      if unknown.size:
        i = int(unknown[0])
        row = int(np.searchsorted(np.cumsum(counts), i, side="right"))
        raise ValueError(f"attribute '{attr}': unknown value {flat[i]!r} (row {row})")
      if counts.size and int(counts.max()) == 1:  # single-valued: one word per row
        for word in np.unique(bit[bit >= 0] // 32):
          hit = (bit >= 0) & (bit // 32 == word)
          bits[:, word] |= np.where(hit, np.left_shift(np.uint32(1), (bit % 32).astype(np.uint32)),
                                    np.uint32(0))
        continue
      rows = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
      keep = bit >= 0
      rows, bit = rows[keep], bit[keep]
      np.bitwise_or.at(bits, (rows, bit // 32),
                       np.left_shift(np.uint32(1), (bit % 32).astype(np.uint32)))
    return set_live(bits.view(np.int32))

  def _attribute_bits(self, attr) -> Dict[str, int]:
    """value -> bit of one categorical attribute, "" -> -2 (cached)."""
    cache = self.__dict__.setdefault("_bits_cache", {})
    if attr not in cache:
      cache[attr] = columns_lib.with_empty(
          {v: b for (a, v), b in self._value_bit.items() if a == attr})
    return cache[attr]

  def _column_values(self, attr, column):
    """Values of a column; a numeric (values, boundaries) pair is unpacked."""
    if attr in self._numeric and isinstance(column, tuple) and len(column) == 2:
      values, boundaries = column
      if _check_boundaries(attr, boundaries) != self.numeric_attributes[attr]:
        raise ValueError(f"attribute '{attr}': boundaries {list(boundaries)} differ "
                         f"from the schema's {list(self.numeric_attributes[attr])}")
      return values
    return column


def _numeric_values(attr: str, values) -> np.ndarray:
  """Values as float64; ValueError naming the attribute (and row of a NaN)."""
  try:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
  except (TypeError, ValueError) as e:
    raise ValueError(f"attribute '{attr}': numeric values expected ({e})") from None
  nan = np.flatnonzero(np.isnan(out))
  if nan.size:
    raise ValueError(f"attribute '{attr}': NaN value at row {int(nan[0])}")
  return out


def compile_filters(filters: tf.Tensor, bit_keys: tf.Tensor,
                    unknown_value: str = "error") -> tf.Tensor:
  """Filter strings [B] -> programs [B, L + 2, 2 + W] that also require `__live__`.

  The program of `ops.compile_filter` followed by the rows `kAny(bit 0)`,
  `kAnd`, so deleted or empty slots never match; "" filters nothing else.
  """
  program = ops.compile_filter(filters, bit_keys, unknown_value=unknown_value)
  row = program.shape[2] if program.shape[2] is not None else tf.shape(program)[2]
  any_live = (tf.one_hot(0, row, on_value=filter_ops.OP_ANY, off_value=0,
                         dtype=tf.int32)
              + tf.one_hot(filter_ops.PROGRAM_HEADER_WORDS, row, dtype=tf.int32))
  and_row = tf.one_hot(0, row, on_value=filter_ops.OP_AND, off_value=0,
                       dtype=tf.int32)
  suffix = tf.stack([any_live, and_row])[None]               # [1, 2, row]
  suffix = tf.tile(suffix, tf.stack([tf.shape(program)[0], 1, 1]))
  return tf.concat([program, suffix], axis=1)


class AttributeEncoder(tf.Module):
  """In-graph `AttributeSchema.encode`: attribute columns -> bitsets [B, W].

  The same bit layout as the numpy `encode` (which the tests use as the
  reference), for update signatures that take raw attribute values:

      encoder = AttributeEncoder(schema.keys, separator="|")
      bits = encoder({"lang": tf.constant(["en"]), "age_hours": tf.constant([3.0])})

  Categorical columns are tf.string [B] (multi-valued cells joined by
  `separator`, "" = no value); numeric columns are float [B]. An unknown
  categorical value or a NaN number raises InvalidArgumentError naming the
  attribute.
  """

  def __init__(self, bit_keys: Sequence[str], separator: str = "|", name=None):
    super().__init__(name=name or "attribute_encoder")
    self.schema = AttributeSchema(bit_keys)
    self.separator = separator
    self.num_bits = len(self.schema.keys)
    keys = [k for k in self.schema.keys[1:] if parse_key(k)[0] == "categorical"]
    bits = [self.schema.keys.index(k) for k in keys]
    if keys:
      self._categorical_bits = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(bits, tf.int64)),
          default_value=-1)
    else:
      self._categorical_bits = None
    self._numeric = {}
    for a in self.schema.numeric_attributes:
      bounds, bucket_bits = self.schema.buckets(a)
      self._numeric[a] = (tf.constant(bounds, tf.float64), tf.constant(bucket_bits, tf.int64))

  @property
  def attributes(self) -> List[str]:
    return self.schema.attributes

  def __call__(self, columns: Mapping[str, tf.Tensor]) -> tf.Tensor:
    missing = [a for a in self.attributes if a not in columns]
    if missing:
      raise ValueError(f"missing attribute column(s) {missing}")
    first = None
    rows, bits = [], []
    checks = []
    for attr in self.attributes:
      column = tf.convert_to_tensor(columns[attr])
      if first is None:
        first = column
      else:
        checks.append(tf.debugging.assert_equal(
            tf.shape(column)[0], tf.shape(first)[0],
            message=f"attribute column '{attr}' has a different length"))
      if attr in self._numeric:
        bounds, bucket_bits = self._numeric[attr]
        values = tf.cast(column, tf.float64)
        values = tf.debugging.check_numerics(values, f"attribute '{attr}': NaN or Inf value")
        # Bucket i holds bounds[i-1] <= x < bounds[i] (searchsorted side="right").
        bucket = tf.searchsorted(bounds, values, side="right", out_type=tf.int64)
        bits.append(tf.gather(bucket_bits, bucket))
        rows.append(tf.range(tf.size(values, out_type=tf.int64)))
        continue
      cells = tf.strings.split(column, self.separator)          # ragged [B, None]
      values = cells.flat_values
      keep = tf.not_equal(values, "")
      values = tf.boolean_mask(values, keep)
      row = tf.boolean_mask(cells.value_rowids(), keep)
      bit = self._categorical_bits.lookup(attr + "=" + values)
      unknown = tf.boolean_mask(values, bit < 0)
      checks.append(tf.debugging.Assert(
          tf.equal(tf.size(unknown), 0),
          [f"attribute '{attr}': unknown value(s)", unknown[:5]], summarize=5))
      bits.append(bit)
      rows.append(row)
    batch = tf.shape(first, out_type=tf.int64)[0] if first is not None else tf.constant(0, tf.int64)
    with tf.control_dependencies(checks):
      bit = tf.concat(bits + [tf.zeros([0], tf.int64)], 0)
      row = tf.concat(rows + [tf.zeros([0], tf.int64)], 0)
      num_words = self.schema.num_words
      # Every (row, bit) pair, OR-ed into [B, W] words, then the live bit.
      dense = tf.scatter_nd(tf.stack([row, bit], 1), tf.ones_like(bit, tf.int32),
                            tf.stack([batch, num_words * 32]))
      dense = tf.minimum(dense, 1)
      grouped = tf.reshape(dense, tf.stack([batch, num_words, 32]))
      shifted = tf.bitwise.left_shift(grouped, tf.range(32, dtype=tf.int32))
      # Disjoint bits: the sum is the OR.
      return set_live(tf.reduce_sum(shifted, axis=-1))
