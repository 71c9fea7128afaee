"""Reads the two CSV files LiNR-TF trains on: `items.csv` and `interactions.csv`.

`items.csv` has one row per item: `item_id` plus attribute/feature columns
(multi-valued columns separate values with `|`). `interactions.csv` has one row
per engagement: `user_id,item_id,timestamp` plus any query-side columns.

    catalog = read_items("out/data/items.csv", cfg)
    log = read_interactions("out/data/interactions.csv", cfg, catalog)

Every problem is an error naming the file, line and column; no row is dropped.
"""

import csv
import dataclasses
from typing import Dict, List

import numpy as np

from linr_tf.config import Config, FeatureSpec


@dataclasses.dataclass
class Catalog:
  """Item table: column name -> array (str for categorical/id, float64 numeric)."""
  columns: Dict[str, np.ndarray]
  id_column: str

  @property
  def ids(self) -> np.ndarray:
    return self.columns[self.id_column]

  def __len__(self) -> int:
    return len(self.ids)

  def rows(self, positions: np.ndarray) -> Dict[str, np.ndarray]:
    return {k: v[positions] for k, v in self.columns.items()}


@dataclasses.dataclass
class Interactions:
  """Engagements: query-side columns plus `item_pos` (row in the Catalog)."""
  columns: Dict[str, np.ndarray]
  item_pos: np.ndarray
  timestamp: np.ndarray

  def __len__(self) -> int:
    return len(self.item_pos)


def _read_rows(path: str, required: List[str]):
  try:
    f = open(path, newline="", encoding="utf-8")
  except OSError as e:
    raise ValueError(f"cannot read {path}: {e.strerror}") from None
  with f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
      raise ValueError(f"{path}: file is empty (expected a header row)")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
      raise ValueError(f"{path}: missing column(s) {missing}; header is {header}")
    rows = []
    for line_no, row in enumerate(reader, start=2):
      if not row:
        continue
      if len(row) != len(header):
        raise ValueError(f"{path}:{line_no}: expected {len(header)} fields, "
                         f"got {len(row)}")
      rows.append(row)
  return header, rows


def _column(path: str, header, rows, spec_name: str, numeric: bool):
  j = header.index(spec_name)
  if not numeric:
    return np.array([r[j].strip() for r in rows], dtype=object).astype(str)
  out = np.empty(len(rows), np.float64)
  for n, r in enumerate(rows):
    try:
      out[n] = float(r[j])
    except ValueError:
      raise ValueError(f"{path}:{n + 2}: column '{spec_name}' must be numeric, "
                       f"got {r[j]!r}") from None
    if not np.isfinite(out[n]):
      raise ValueError(f"{path}:{n + 2}: column '{spec_name}' is not finite")
  return out


def _int_column(path: str, header, rows, name: str) -> np.ndarray:
  j = header.index(name)
  out = np.empty(len(rows), np.int64)
  for n, r in enumerate(rows):
    try:
      out[n] = int(r[j].strip())
    except (ValueError, OverflowError):
      raise ValueError(f"{path}:{n + 2}: column '{name}' (an int64 filter attribute) must "
                       f"be an integer, got {r[j]!r}") from None
  return out


def _is_numeric(specs: List[FeatureSpec], name: str) -> bool:
  return any(s.name == name and s.is_numeric for s in specs)


def read_items(path: str, cfg: Config) -> Catalog:
  names = [s.name for s in cfg.item_features]
  needed = list(dict.fromkeys(names + list(cfg.filter_attributes)))
  header, rows = _read_rows(path, needed)
  if not rows:
    raise ValueError(f"{path}: no items")
  # Numeric: numeric features, and filter attributes of an exact number kind.
  cols = {n: _column(path, header, rows, n, _is_numeric(cfg.item_features, n)
                     or (n in cfg.filter_attributes and cfg.is_numeric_attribute(n)))
          for n in needed}
  for n in needed:   # int64 attributes that are no feature: exact past 2^53
    if not _is_numeric(cfg.item_features, n) and n in cfg.filter_attributes \
        and cfg.filter_kind(n) == "int64":
      cols[n] = _int_column(path, header, rows, n)
  ids = cols[cfg.item_id_feature]
  uniq, counts = np.unique(ids, return_counts=True)
  if (counts > 1).any():
    raise ValueError(f"{path}: duplicate item ids, e.g. "
                     f"{uniq[counts > 1][:3].tolist()}")
  if (ids == "").any():
    raise ValueError(f"{path}: empty item id on line "
                     f"{int(np.argmax(ids == '')) + 2}")
  return Catalog(columns=cols, id_column=cfg.item_id_feature)


def read_interactions(path: str, cfg: Config, catalog: Catalog) -> Interactions:
  q_names = [s.name for s in cfg.query_features]
  header, rows = _read_rows(
      path, list(dict.fromkeys(q_names + [cfg.item_id_feature, "timestamp"])))
  if not rows:
    raise ValueError(f"{path}: no interactions")
  cols = {n: _column(path, header, rows, n, _is_numeric(cfg.query_features, n))
          for n in q_names}
  item_ids = _column(path, header, rows, cfg.item_id_feature, numeric=False)
  ts = _column(path, header, rows, "timestamp", numeric=True)
  order = np.argsort(catalog.ids)
  sorted_ids = catalog.ids[order]
  where = np.searchsorted(sorted_ids, item_ids)
  where = np.minimum(where, len(sorted_ids) - 1)
  unknown = sorted_ids[where] != item_ids
  if unknown.any():
    line = int(np.argmax(unknown)) + 2
    raise ValueError(f"{path}:{line}: item id {str(item_ids[line - 2])!r} is not in "
                     f"the item catalog ({int(unknown.sum())} such rows)")
  return Interactions(columns=cols, item_pos=order[where], timestamp=ts)
