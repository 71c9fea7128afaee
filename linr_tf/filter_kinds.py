"""Choosing each filter attribute's kind, and encoding a catalogue into its stores.

Kinds:
  "bitset"     one bit per value (`AttributeSchema`), for low cardinality
  "value_ids"  value ids per item (`ColumnSchema`), for 10^3 to 10^8 values
  "int64", "float64"  exact numbers (any threshold)
  "buckets"    one bit per [lo, hi) bucket (needs boundaries; thresholds at
               boundaries only: what the towers use as a feature)

By default a categorical attribute is a bitset while it has at most
`bitset_max_values` distinct values and value ids beyond; a numeric one is
"int64" for an integer column and "float64" otherwise. `kinds` overrides.

    bits_schema, columns = choose_kinds({"genre": genres, "company": companies},
                                        {"year": years}, kinds={"genre": "bitset"})
    bits, numbers, value_ids = encode_stores(bits_schema, columns, raw_columns)
    index = ItemIndex(dim, bits_schema.keys, columns=columns)
    index.assign(ids, embeddings, bits, numbers=numbers, value_ids=value_ids)
"""

from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from linr_tf.attributes import AttributeSchema
from linr_tf.columns import ColumnSchema, split_cells

KINDS = ("bitset", "value_ids", "int64", "float64", "buckets")
DEFAULT_BITSET_MAX_VALUES = 1024


def choose_kinds(categorical: Mapping[str, np.ndarray], numeric: Mapping[str, np.ndarray],
                 kinds: Optional[Mapping[str, str]] = None,
                 bitset_max_values: int = DEFAULT_BITSET_MAX_VALUES,
                 boundaries: Optional[Mapping[str, Sequence[float]]] = None,
                 separator: str = "|") -> Tuple[AttributeSchema, ColumnSchema]:
  """(AttributeSchema of the bit kinds, ColumnSchema of the column kinds)."""
  kinds = dict(kinds or {})
  boundaries = dict(boundaries or {})
  unknown = sorted(set(kinds) - set(categorical) - set(numeric))
  if unknown:
    raise ValueError(f"kinds given for unknown attribute(s) {unknown}")
  for attr, kind in kinds.items():
    allowed = ("bitset", "value_ids") if attr in categorical else ("int64", "float64", "buckets")
    if kind not in allowed:
      raise ValueError(f"attribute '{attr}': kind {kind!r} not one of {allowed}")
  bit_categorical, bit_numeric, value_columns, numbers = {}, {}, {}, {}
  for attr, cells in categorical.items():
    kind = kinds.get(attr)
    if kind is None:
      flat, _ = split_cells(cells, separator)
      kind = "bitset" if len(set(flat)) <= bitset_max_values else "value_ids"
    (bit_categorical if kind == "bitset" else value_columns)[attr] = cells
  for attr, values in numeric.items():
    kind = kinds.get(attr)
    if kind is None:
      kind = "int64" if np.asarray(values).dtype.kind in "iu" else "float64"
    if kind == "buckets":
      if attr not in boundaries:
        raise ValueError(f"attribute '{attr}': kind 'buckets' needs boundaries")
      bit_numeric[attr] = (values, boundaries[attr])
    else:
      numbers[attr] = kind
  bits_schema = AttributeSchema.from_columns(bit_categorical, numeric=bit_numeric,
                                             separator=separator)
  columns = ColumnSchema.from_columns(value_columns, numbers=numbers, separator=separator)
  return bits_schema, columns


def encode_stores(bits_schema: AttributeSchema, columns: ColumnSchema,
                  raw: Mapping[str, np.ndarray], separator: str = "|", grow: bool = False
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(bits [N, W] int32, numbers [N, A] int64, value_ids [N, V] int32) of the
  raw attribute columns (vectorised; see the schemas' `encode`)."""
  bit_columns = {a: raw[a] for a in bits_schema.attributes}
  for attr in bits_schema.numeric_attributes:
    bit_columns[attr] = raw[attr]
  bits = bits_schema.encode(bit_columns, separator)
  numbers, value_ids = columns.encode({a: raw[a] for a in columns.attributes}, separator, grow)
  return bits, numbers, value_ids
