"""Numpy checks of an update batch, written once: a bad batch is refused with a
ValueError naming the problem before anything is applied.

    ids, versions = check_keys(["a", "b"], [1, 2])
    emb = check_embeddings(vectors, dim=64, n=2)
    columns = check_attribute_columns(schema, {"lang": ["en", "de"]}, n=2)

Used by `LiveIndex` (every write) and `ItemIndex.assign`. The update
signatures check the same things in-graph (InvalidArgumentError): those checks
are the contract for every other client; these only give numpy callers a
plain error first.
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np


def check_keys(item_ids, versions=None) -> Tuple[np.ndarray, np.ndarray]:
  """(ids object [n], versions int64 [n]): non-empty unique string ids, versions
  integers >= 0 (all 0 when `versions` is None)."""
  ids = np.asarray(item_ids, dtype=object).reshape(-1)
  if versions is None:
    versions = np.zeros([ids.size], np.int64)
  try:
    vers = np.asarray(versions, dtype=np.int64).reshape(-1)
  except (TypeError, ValueError, OverflowError) as e:
    raise ValueError(f"versions must be integers ({e})") from None
  if ids.size != vers.size:
    raise ValueError(f"{ids.size} item ids but {vers.size} versions")
  if any(not isinstance(i, (str, bytes)) or not i for i in ids):
    raise ValueError("item ids must be non-empty strings")
  if len(set(ids.tolist())) != ids.size:
    raise ValueError("item ids must be unique within one update")
  if (vers < 0).any():
    raise ValueError("versions must be >= 0")
  return ids, vers


def check_embeddings(embeddings, dim: int, n: Optional[int] = None) -> np.ndarray:
  """float32 [n, dim] finite embeddings (any number of rows if `n` is None)."""
  emb = np.asarray(embeddings, dtype=np.float32)
  if emb.ndim != 2 or emb.shape[1] != dim:
    rows = "N" if n is None else n
    raise ValueError(f"embeddings must be [{rows}, {dim}], got {list(emb.shape)}")
  if n is not None and emb.shape[0] != n:
    raise ValueError(f"item ids ({n}) and embeddings ({emb.shape[0]}) differ in length")
  if not np.isfinite(emb).all():
    raise ValueError("embeddings contain NaN or Inf")
  return emb


def check_attribute_columns(schema, columns: Mapping[str, Sequence], n: int,
                            separator: str = "|") -> Dict[str, np.ndarray]:
  """One column of n values per attribute of `schema` (an `AttributeSchema`):
  float64 finite numbers for numeric attributes, known values for categorical
  ones (unknown values are named)."""
  missing = [a for a in schema.attributes if a not in columns]
  if missing:
    raise ValueError(f"missing attribute column(s) {missing}")
  out = {}
  numeric = schema.numeric_attributes
  for a in schema.attributes:
    values = np.asarray(columns[a]).reshape(-1)
    if values.size != n:
      raise ValueError(f"attribute column '{a}' has {values.size} values, expected {n}")
    if a in numeric:
      values = schema.numeric_values(a, values)
      if not np.isfinite(values).all():
        raise ValueError(f"attribute '{a}': NaN or Inf value")
    else:
      values = values.astype(object)
    out[a] = values
  # Unknown categorical values: the numpy encoder names attribute and value.
  schema.encode(out, separator)
  return out


def check_column_attributes(columns_schema, columns: Mapping[str, Sequence], n: int,
                            separator: str = "|") -> Dict[str, np.ndarray]:
  """One column of n values per column attribute of `columns_schema` (a
  `ColumnSchema`): exact numbers as int64 ("int64": integers only) or float64
  (NaN refused), value-id cells as strings (new values allowed: the index
  gives them ids) with at most the attribute's width of values per cell."""
  from linr_tf.columns import number_column, split_cells  # pylint: disable=g-import-not-at-top
  missing = [a for a in columns_schema.attributes if a not in columns]
  if missing:
    raise ValueError(f"missing attribute column(s) {missing}")
  out = {}
  for a in columns_schema.attributes:
    values = np.asarray(columns[a]).reshape(-1)
    if values.size != n:
      raise ValueError(f"attribute column '{a}' has {values.size} values, expected {n}")
    if a in columns_schema.numbers:
      dtype = columns_schema.numbers[a]
      words = number_column(a, values, dtype)
      out[a] = words if dtype == "int64" else words.view(np.float64)
      continue
    cells = [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
    width = columns_schema.values[a]
    for row, cell in enumerate(cells):
      held = len(set(filter(None, cell.split(separator))))
      if held > width:
        raise ValueError(f"attribute '{a}': row {row} holds {held} values, more than its "
                         f"width {width}")
    out[a] = np.asarray(cells, dtype=object)
  return out
