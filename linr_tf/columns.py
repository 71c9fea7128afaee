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

Encoding is vectorised: string cells are split with one `str.join`/`str.split`
per column and values mapped with `map(dict.get, ...)` (C loops, no Python
code per row, ~0.1-1 us per value: a dict of 10^5 strings misses the caches);
integer cells ([N], or [N, k] with -1 = none: company or author ids) are
looked up by `np.searchsorted` in the sorted integer vocabulary; ELL rows come
from one row-wise sort of a dense [N, pieces] matrix.
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
    self._lookup: Dict[object, object] = {}  # _ids plus "" -> -2; integer vocabularies
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
    self._lookup.pop(attribute, None)
    self._lookup.pop(("int", attribute), None)
    self._lookup.pop(("dense", attribute), None)
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

  def _encode_integer_values(self, attr, cells, width, grow) -> np.ndarray:
    """Integer value columns ([N], or [N, k] with -1 = no value), e.g. company
    or author ids: values are the integers' text, looked up by a binary search
    over the sorted integer vocabulary (no per-value Python code)."""
    cells = cells.astype(np.int64).reshape(len(cells), -1)
    present = cells >= 0
    key = ("int", attr)
    if key not in self._lookup:
      vocab = _integer_vocabulary(self._ids[attr])
      if vocab is None:
        raise ValueError(f"attribute '{attr}': integer cells need a vocabulary of integers")
      self._lookup[key] = vocab
    values, ids = self._lookup[key]
    if len(values) and values[-1] - values[0] < 4 * len(values) + 1024:
      # Dense enough: a direct table over [min, max] (one gather per value).
      dense_key = ("dense", attr)
      if dense_key not in self._lookup:
        table = np.full(int(values[-1] - values[0]) + 1, -1, np.int64)
        table[values - values[0]] = ids
        self._lookup[dense_key] = table
      table = self._lookup[dense_key]
      offset = cells - values[0]
      inside = present & (offset >= 0) & (offset < len(table))
      found = np.where(inside, table[np.where(inside, offset, 0)], -1)
      known = found >= 0
      pos = None
    else:
      pos = np.minimum(np.searchsorted(values, cells), max(len(values) - 1, 0))
      known = present & (values[pos] == cells) if len(values) else np.zeros_like(present)
    if (present & ~known).any():
      row, col = np.argwhere(present & ~known)[0]
      if not grow:
        raise ValueError(f"attribute '{attr}': unknown value {str(cells[row, col])!r} (row {row})")
      self.add_values(attr, [str(v) for v in np.unique(cells[present & ~known])])
      return self._encode_integer_values(attr, cells, width, grow=False)
    if pos is None:
      out_ids = np.where(known, found, -2)
    else:
      out_ids = np.where(known, ids[pos] if len(values) else -1, -2)
    counts = np.full(len(cells), cells.shape[1], np.int64)
    return ell_rows(attr, out_ids.reshape(-1), counts, width)

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
      if isinstance(cells, np.ndarray) and cells.dtype.kind in "iu":  # integer ids
        cells = cells.reshape(len(cells), -1)
        vocab[a] = [str(v) for v in np.unique(cells[cells >= 0])]
        found_widths[a] = max(1, int((cells >= 0).sum(axis=1).max()) if cells.size else 1)
        continue
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
    if isinstance(cells, np.ndarray) and cells.dtype.kind in "iu":
      return self._encode_integer_values(attr, cells, width, grow)
    flat, counts = split_cells(cells, separator, keep_empty=True)
    if attr not in self._lookup:
      self._lookup[attr] = with_empty(self._ids[attr])
    ids = lookup_ids(self._lookup[attr], flat)
    unknown = np.flatnonzero(ids == -1)
    if unknown.size:
      if not grow:
        i = int(unknown[0])
        row = int(np.searchsorted(np.cumsum(counts), i, side="right"))
        raise ValueError(f"attribute '{attr}': unknown value {flat[i]!r} (row {row})")
      new = [flat[i] for i in unknown]
      self.add_values(attr, list(dict.fromkeys(new)))
      ids[unknown] = lookup_ids(self._ids[attr], new)
    return ell_rows(attr, ids, counts, width)


def _integer_vocabulary(ids: Mapping[str, int]):
  """(sorted int64 values, their ids) when every value is an integer's text, else None."""
  try:
    values = np.array([int(v) for v in ids], np.int64)
  except (ValueError, OverflowError):
    return None
  if any(str(int(v)) != v for v in ids):
    return None
  order = np.argsort(values, kind="stable")
  return values[order], np.fromiter(ids.values(), np.int64, count=len(ids))[order]


def lookup_ids(table: Mapping[str, int], flat: Sequence[str]) -> np.ndarray:
  """int64 ids of `flat` via `table` (a C loop): -1 unknown; `table` maps ""
  to -2 (an empty piece) when it comes from `with_empty`."""
  return np.fromiter(map(table.get, flat, itertools.repeat(-1)), np.int64, count=len(flat))


def with_empty(table: Mapping[str, int]) -> Dict[str, int]:
  """`table` plus "" -> -2, for `lookup_ids`."""
  out = dict(table)
  out[""] = -2
  return out


def ell_rows(attr: str, ids: np.ndarray, counts: np.ndarray, width: int) -> np.ndarray:
  """[N, width] int32: each row's ids (pieces `counts` per row; -2 = empty
  piece) sorted, unique, -1 padded; ValueError naming a row over `width`."""
  n = counts.size
  out = np.full((n, width), -1, np.int32)
  if n and int(counts.max()) == 1:  # single-valued: no sort
    out[:, 0] = np.where(ids < 0, -1, ids)
    return out
  big = np.iinfo(np.int64).max
  starts = np.cumsum(counts) - counts
  position = np.arange(ids.size) - np.repeat(starts, counts)
  dense = np.full((n, int(counts.max()) if n else 1), big, np.int64)
  dense[np.repeat(np.arange(n), counts), position] = np.where(ids < 0, big, ids)
  dense.sort(axis=1)
  dup = dense[:, 1:] == dense[:, :-1]
  dense[:, 1:][dup] = big
  if dup.any():
    dense.sort(axis=1)
  held = (dense != big).sum(axis=1)
  over = np.flatnonzero(held > width)
  if over.size:
    raise ValueError(f"attribute '{attr}': row {int(over[0])} holds {int(held[over[0]])} "
                     f"values, more than its width {width}")
  take = min(width, dense.shape[1])
  out[:, :take] = np.where(dense[:, :take] == big, -1, dense[:, :take])
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
  joined = separator.join(cells)
  if joined.count(separator) == len(cells) - 1:  # no cell holds several values
    counts, flat = np.ones(len(cells), np.int64), cells
  else:
    counts = np.fromiter(map(str.count, cells, itertools.repeat(separator)), np.int64,
                         count=len(cells)) + 1
    flat = joined.split(separator)
  if keep_empty:
    return flat, counts
  return list(filter(None, flat)), counts
