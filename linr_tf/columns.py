"""Column attributes: exact numbers and value ids, beside the attribute bitsets.

Two per-item stores hold what a bitset cannot:

  numbers    int64 [N, A]  exact numeric attributes ("int64" columns compare
                           exactly at any threshold, also past 2^53; "float64"
                           columns hold float64 bit patterns)
  value_ids  int32 [N, V]  high-cardinality categorical attributes (company,
                           author: 10^3 to 10^8 values). Each attribute owns
                           `width` columns: the ids of an item's values,
                           sorted, unique, padded with -1 (ELL: a fixed-width
                           row, so live updates write it in place atomically).

Value ids are dense integers per ("attr=value") key, kept in the index's
`value_id_of` table. Filters compare them in the same fused pass as the bits
(`LinrFilterMaskColumns`, custom_ops/filter/filter_columns.h):

    age_hours <= 24 AND followers BETWEEN 1500 AND 20000
    company != "O'Reilly" AND author IN ("a17", "a9") AND item_id NOT IN ("p1", "p7")

    schema = ColumnSchema.from_columns({"company": companies, "author": authors},
                                       numbers={"age_hours": "float64"})
    numbers, value_ids = schema.encode({"company": companies, "author": authors,
                                        "age_hours": ages})

Encoding is vectorised: cells are split with one `str.join`/`str.split` per
column and values are mapped with `map(dict.get, ...)` (C loops, no Python
code per row); ELL rows come from one sort of (row, id) keys.
"""

import itertools
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

NUMBER_DTYPES = ("int64", "float64")
ID_ATTRIBUTE = "item_id"


class ColumnSchema:
  """Names and layout of the number and value-id columns, and the value ids.

  numbers: attribute -> "int64" | "float64" (column order = insertion order).
  values: attribute -> width (max values per item; columns laid out in order).
  vocabulary: attribute -> its known values; the id of value i of attribute
    a is `offset(a) + i` (ids are unique across attributes).
  """

  def __init__(self, numbers: Optional[Mapping[str, str]] = None,
               values: Optional[Mapping[str, int]] = None,
               vocabulary: Optional[Mapping[str, Sequence[str]]] = None):
    self.numbers = dict(numbers or {})
    self.values = {a: int(w) for a, w in (values or {}).items()}
    for a, t in self.numbers.items():
      if t not in NUMBER_DTYPES:
        raise ValueError(f"number column '{a}': dtype must be one of {NUMBER_DTYPES}, got {t!r}")
    for a, w in self.values.items():
      if w < 1:
        raise ValueError(f"value column '{a}': width must be >= 1, got {w}")
    both = set(self.numbers) & set(self.values)
    if both:
      raise ValueError(f"attribute(s) {sorted(both)} are both number and value columns")
    vocabulary = dict(vocabulary or {})
    self._ids: Dict[str, Dict[str, int]] = {}
    self._next_id = 0
    for a in self.values:
      self._ids[a] = {}
      self.add_values(a, vocabulary.get(a, ()))

  # --- layout ------------------------------------------------------------------

  @property
  def attributes(self) -> List[str]:
    return list(self.numbers) + list(self.values)

  @property
  def number_specs(self) -> List[str]:
    """"name:int64" / "name:float64", the compiler's number_columns."""
    return [f"{a}:{t}" for a, t in self.numbers.items()]

  @property
  def value_specs(self) -> List[str]:
    """"name:width", the compiler's value_columns."""
    return [f"{a}:{w}" for a, w in self.values.items()]

  @property
  def value_width(self) -> int:
    return sum(self.values.values())

  def value_range(self, attribute: str) -> Tuple[int, int]:
    """Columns [begin, end) of a value attribute in `value_ids`."""
    begin = 0
    for a, w in self.values.items():
      if a == attribute:
        return begin, begin + w
      begin += w
    raise ValueError(f"'{attribute}' is not a value column (value columns: {list(self.values)})")

  @classmethod
  def from_specs(cls, number_specs: Sequence[str], value_specs: Sequence[str],
                 value_keys: Sequence[str] = (), value_ids: Sequence[int] = ()
                 ) -> "ColumnSchema":
    """The schema stored in an index: specs and its ("attr=value", id) pairs."""
    def split(spec):
      name, _, rest = str(spec).rpartition(":")
      return name, rest
    schema = cls(dict(split(s) for s in number_specs),
                 {n: int(w) for n, w in map(split, value_specs)})
    order = np.argsort(np.asarray(value_ids, np.int64), kind="stable")
    for i in order:
      attr, _, value = str(value_keys[i]).partition("=")
      got = schema.add_values(attr, [value])[0]
      if got != int(value_ids[i]):
        raise ValueError(f"value ids of the index are not dense: {value_keys[i]!r} has id "
                         f"{int(value_ids[i])}, expected {got}")
    return schema

  # --- values ------------------------------------------------------------------

  def add_values(self, attribute: str, values: Sequence[str]) -> List[int]:
    """Ids of `values`, new ones appended (ids never change once given)."""
    if attribute not in self._ids:
      raise ValueError(f"'{attribute}' is not a value column (value columns: {list(self.values)})")
    ids = self._ids[attribute]
    out = []
    for v in values:
      v = str(v)
      if v not in ids:
        if v == "":
          raise ValueError(f"attribute '{attribute}': the empty string is not a value")
        ids[v] = self._next_id
        self._next_id += 1
      out.append(ids[v])
    return out

  def vocabulary(self, attribute: str) -> List[str]:
    ids = self._ids[attribute]
    return sorted(ids, key=ids.get)

  def value_keys(self) -> Tuple[List[str], np.ndarray]:
    """("attr=value" keys, int64 ids) of every known value (the index's table)."""
    keys, ids = [], []
    for a, table in self._ids.items():
      keys.extend(f"{a}={v}" for v in table)
      ids.extend(table.values())
    return keys, np.asarray(ids, np.int64)

  @property
  def num_values(self) -> int:
    return self._next_id

  # --- construction and encoding ---------------------------------------------

  @classmethod
  def from_columns(cls, values: Mapping[str, np.ndarray],
                   numbers: Optional[Mapping[str, str]] = None, separator: str = "|",
                   widths: Optional[Mapping[str, int]] = None) -> "ColumnSchema":
    """Value columns of `values` (vocabulary and width from the data, or
    `widths`), number columns `numbers` (attribute -> dtype)."""
    widths = dict(widths or {})
    vocab, found_widths = {}, {}
    for a, cells in values.items():
      flat, counts = split_cells(cells, separator)
      vocab[a] = sorted(set(flat))
      found_widths[a] = max(1, int(counts.max()) if counts.size else 1)
    return cls(numbers, {a: widths.get(a, found_widths[a]) for a in values}, vocab)

  def encode(self, columns: Mapping[str, np.ndarray], separator: str = "|",
             grow: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(numbers int64 [N, A], value_ids int32 [N, V]) of attribute columns.

    Numbers: NaN is refused (ValueError naming the attribute and row); int64
    columns take integers (a float with a fraction is refused). Values: cells
    split on `separator`, "" = no value; an unknown value is a ValueError
    unless `grow` (then it gets a new id); more values than the width is a
    ValueError naming the row.
    """
    missing = [a for a in self.attributes if a not in columns]
    if missing:
      raise ValueError(f"missing attribute column(s) {missing}")
    lengths = {a: len(columns[a]) for a in self.attributes}
    if len(set(lengths.values())) > 1:
      raise ValueError(f"attribute columns differ in length: {lengths}")
    n = next(iter(lengths.values())) if lengths else 0
    numbers = np.zeros((n, len(self.numbers)), np.int64)
    for c, (a, dtype) in enumerate(self.numbers.items()):
      numbers[:, c] = number_column(a, columns[a], dtype)
    value_ids = np.full((n, self.value_width), -1, np.int32)
    for a in self.values:
      begin, end = self.value_range(a)
      value_ids[:, begin:end] = self._encode_values(a, columns[a], separator, grow)
    return numbers, value_ids

  def _encode_values(self, attr, cells, separator, grow) -> np.ndarray:
    width = self.values[attr]
    flat, counts = split_cells(cells, separator, keep_empty=True)
    n = counts.size
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    ids = np.fromiter(map(self._ids[attr].get, flat, itertools.repeat(-1)), np.int64,
                      count=len(flat))
    empty = np.fromiter(map(len, flat), np.int64, count=len(flat)) == 0
    unknown = (ids < 0) & ~empty
    if unknown.any():
      if not grow:
        i = int(np.flatnonzero(unknown)[0])
        raise ValueError(f"attribute '{attr}': unknown value {flat[i]!r} (row {int(rows[i])})")
      new = [flat[i] for i in np.flatnonzero(unknown)]
      self.add_values(attr, list(dict.fromkeys(new)))
      ids[unknown] = np.fromiter(map(self._ids[attr].get, new), np.int64, count=len(new))
    keep = ~empty
    rows, ids = rows[keep], ids[keep]
    # Sorted unique ids per row: one sort of (row, id) keys.
    key = np.unique(rows * (self._next_id + 1) + ids)
    rows, ids = key // (self._next_id + 1), key % (self._next_id + 1)
    starts = np.searchsorted(rows, np.arange(n))
    position = np.arange(rows.size) - starts[rows]
    too_many = np.flatnonzero(position >= width)
    if too_many.size:
      row = int(rows[too_many[0]])
      raise ValueError(f"attribute '{attr}': row {row} holds "
                       f"{int(np.sum(rows == row))} values, more than its width {width}")
    out = np.full((n, width), -1, np.int32)
    out[rows, position] = ids
    return out


def number_column(attr: str, values, dtype: str) -> np.ndarray:
  """A numeric column as the int64 words of the numbers store.

  NaN is refused with the row; an int64 column refuses fractions.
  """
  try:
    raw = np.asarray(values).reshape(-1)
  except (TypeError, ValueError) as e:
    raise ValueError(f"attribute '{attr}': numeric values expected ({e})") from None
  if dtype == "int64":
    if raw.dtype.kind in "iu":
      return raw.astype(np.int64)
    try:
      as_float = raw.astype(np.float64)
    except (TypeError, ValueError) as e:
      raise ValueError(f"attribute '{attr}': integer values expected ({e})") from None
    bad = np.flatnonzero(~np.isfinite(as_float) | (np.floor(as_float) != as_float))
    if bad.size:
      raise ValueError(f"attribute '{attr}': int64 column got {raw.tolist()[bad[0]]!r} "
                       f"at row {int(bad[0])} (NaN, infinite or fractional)")
    if raw.dtype == object:  # Python ints past 2^53 stay exact
      return np.array([int(v) for v in raw], np.int64)
    return as_float.astype(np.int64)
  try:
    as_float = raw.astype(np.float64)
  except (TypeError, ValueError) as e:
    raise ValueError(f"attribute '{attr}': numeric values expected ({e})") from None
  nan = np.flatnonzero(np.isnan(as_float))
  if nan.size:
    raise ValueError(f"attribute '{attr}': NaN value at row {int(nan[0])}")
  return as_float.view(np.int64)


def numbers_as_values(numbers: np.ndarray, schema: ColumnSchema) -> Dict[str, np.ndarray]:
  """The numbers store back to {attribute: int64 or float64 column}."""
  out = {}
  for c, (a, dtype) in enumerate(schema.numbers.items()):
    column = np.ascontiguousarray(numbers[:, c])
    out[a] = column if dtype == "int64" else column.view(np.float64)
  return out


def _as_strings(cells) -> List[str]:
  """A column of cells as a list of str (bytes decoded as UTF-8), no per-row Python code."""
  cells = np.asarray(cells, dtype=object).reshape(-1).tolist()
  if cells and isinstance(cells[0], bytes):
    return list(map(bytes.decode, cells))
  if cells and not isinstance(cells[0], str):
    return list(map(str, cells))
  return cells


def split_cells(cells, separator, keep_empty=False):
  """(flat values, pieces per cell) of multi-valued cells, split in C loops.

  With `keep_empty`, empty cells and empty pieces ("a||b") stay in `flat` as
  "" so that `np.repeat(rows, counts)` lines up with it; without, they are
  dropped from `flat` (counts still include them: an upper bound).
  """
  cells = _as_strings(cells)
  if not cells:
    return [], np.zeros([0], np.int64)
  counts = np.fromiter(map(str.count, cells, itertools.repeat(separator)), np.int64,
                       count=len(cells)) + 1
  flat = separator.join(cells).split(separator)
  if keep_empty:
    return flat, counts
  return list(filter(None, flat)), counts
