"""The index's per-slot stores: one named layout, read and written as a whole.

    layout = RowLayout.for_index(dim=64, num_words=2, vectors="float16", code_words=4)
    layout.names                       # ('ids', 'versions', 'attributes', 'vectors', 'codes')
    variables = layout.make_variables(capacity=0)       # Rows of tf.Variable
    snapshot = layout.read(variables)                   # Rows of tensors, one consistent read
    snapshot.attributes, snapshot.vectors

`Rows` has a fixed field for every store an index can hold; a store the
layout does not hold is `None`. Bit stores (attribute bitsets, 1-bit codes)
hold int32 bit patterns but are *stored* as uint32 variables: TensorFlow keeps
int32 variables in host memory even under `tf.device("/GPU:0")`, uint32 ones
in GPU memory. `read` and `to_storage` convert (a zero-copy bitcast), so
everything outside this file sees int32. `RowLayout` says which are present, their
dtypes and row shapes, and is the single description that `ItemIndex` (its
variables, reads and writes), `LiveIndex` (numpy views), the portable index
and snapshots read. A new store (e.g. cluster ids, several vectors per
item) is one new field here.
"""

from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from linr_tf import ops

VECTOR_DTYPES = {"float32": tf.float32, "float16": tf.float16, "bfloat16": tf.bfloat16}


class Rows(NamedTuple):
  """One value per store (tensor, variable, spec or numpy array); None = absent.

  ids [N] string ("" = never used), versions [N] int64, attributes [N, W]
  int32 bitsets (bit 0 = `__live__`), vectors [N, dim] float, codes [N, m/32]
  int32 1-bit codes, code_factors [N] float32 per-item factors of the
  asymmetric (RaBitQ) estimator, numbers [N, A] int64 exact numeric
  attributes (float64 ones as bit patterns), value_ids [N, V] int32 ids of
  high-cardinality categorical values (`linr_tf/columns.py`), rank_dense
  [N, F] float32 and rank_ids [N, C] int64 the candidate features of the
  ranker (`linr_tf/ranking/`), mol_vectors [N, Q, dim] the Q item
  embeddings of Mixture-of-Logits scoring and cluster_ids [N] int32 each
  item's cluster (`linr_tf/mol/`).
  """
  ids: object = None
  versions: object = None
  attributes: object = None
  vectors: object = None
  codes: object = None
  code_factors: object = None
  numbers: object = None
  value_ids: object = None
  rank_dense: object = None
  rank_ids: object = None
  mol_vectors: object = None
  cluster_ids: object = None

  def present(self) -> list:
    """The present values, in field order (what `read_rows` takes)."""
    return [v for v in self if v is not None]


class RowField(NamedTuple):
  """A store: its `Rows` field name, value dtype, row shape, the fill of new
  rows and the dtype of its variable (None = the value dtype)."""
  name: str
  dtype: tf.DType
  row_shape: Tuple[int, ...]
  fill: object = 0
  storage: Optional[tf.DType] = None

  @property
  def storage_dtype(self) -> tf.DType:
    return self.storage or self.dtype


class RowLayout:
  """Which stores an index holds, with dtypes and row shapes."""

  def __init__(self, fields: Sequence[RowField]):
    names = [f.name for f in fields]
    unknown = sorted(set(names) - set(Rows._fields))
    if unknown:
      raise ValueError(f"unknown row store(s) {unknown}; known: {list(Rows._fields)}")
    if names[:3] != ["ids", "versions", "attributes"]:
      raise ValueError("a row layout starts with ids, versions, attributes")
    # Field order is Rows order, so the flat list of a snapshot is fixed.
    self.fields = tuple(sorted(fields, key=lambda f: Rows._fields.index(f.name)))

  @classmethod
  def for_index(cls, dim: int, num_words: int, vectors: Optional[str] = "float32",
                code_words: int = 0, code_factors: bool = False,
                number_columns: int = 0, value_width: int = 0,
                rank_dense: int = 0, rank_ids: int = 0, mol_components: int = 0,
                mol_dtype: str = "float32", cluster_ids: bool = False) -> "RowLayout":
    """Layout of an `ItemIndex`: vectors of dtype `vectors` (None = none),
    `code_words` int32 words of 1-bit codes per item (0 = none), with
    `code_factors` one float32 factor per code (`RaBitQ`), and the filter
    column stores: `number_columns` int64 numbers and `value_width` int32
    value ids per item (0 = none; `ColumnSchema`), and the ranker's
    candidate features: `rank_dense` float32 and `rank_ids` int64 per item
    (0 = none; `linr_tf.ranking.RankingSchema`), and `mol_components` Q
    embeddings of width `dim` per item in `mol_dtype` (0 = none) with, given
    `cluster_ids`, each item's cluster id (`linr_tf.mol`)."""
    fields = [RowField("ids", tf.string, (), ""),
              RowField("versions", tf.int64, ()),
              RowField("attributes", tf.int32, (int(num_words),), storage=tf.uint32)]
    if vectors is not None:
      if vectors not in VECTOR_DTYPES:
        raise ValueError(f"vectors must be one of {sorted(VECTOR_DTYPES)} or None, "
                         f"got {vectors!r}")
      fields.append(RowField("vectors", VECTOR_DTYPES[vectors], (int(dim),)))
    if code_words:
      fields.append(RowField("codes", tf.int32, (int(code_words),), storage=tf.uint32))
    if code_factors:
      if not code_words:
        raise ValueError("code_factors need codes (code_words > 0)")
      # float32: stays in GPU memory under tf.device("/GPU:0") (int32 would not).
      fields.append(RowField("code_factors", tf.float32, ()))
    if number_columns:
      # int64 variables stay in GPU memory under tf.device("/GPU:0") (like versions).
      fields.append(RowField("numbers", tf.int64, (int(number_columns),)))
    if value_width:
      fields.append(RowField("value_ids", tf.int32, (int(value_width),), storage=tf.uint32))
    if rank_dense:
      fields.append(RowField("rank_dense", tf.float32, (int(rank_dense),)))
    if rank_ids:
      # int64: stays in GPU memory under tf.device("/GPU:0") (int32 would not).
      fields.append(RowField("rank_ids", tf.int64, (int(rank_ids),)))
    if mol_components:
      if mol_dtype not in VECTOR_DTYPES:
        raise ValueError(f"mol_dtype must be one of {sorted(VECTOR_DTYPES)}, got {mol_dtype!r}")
      fields.append(RowField("mol_vectors", VECTOR_DTYPES[mol_dtype],
                             (int(mol_components), int(dim))))
    if cluster_ids:
      fields.append(RowField("cluster_ids", tf.int32, (), storage=tf.uint32))
    return cls(fields)

  @property
  def names(self) -> Tuple[str, ...]:
    return tuple(f.name for f in self.fields)

  def field(self, name: str) -> Optional[RowField]:
    return next((f for f in self.fields if f.name == name), None)

  def rows(self, values: Sequence) -> Rows:
    """`Rows` from values in layout order (e.g. the outputs of `read_rows`)."""
    values = list(values)
    if len(values) != len(self.fields):
      raise ValueError(f"{len(values)} values for the {len(self.fields)} stores "
                       f"{list(self.names)}")
    return Rows(**dict(zip(self.names, values)))

  def make_variables(self, capacity: int = 0) -> Rows:
    """Non-trainable variables with a growable leading dimension."""
    return self.rows([
        tf.Variable(tf.fill([capacity, *f.row_shape], tf.constant(f.fill, f.storage_dtype)),
                    shape=tf.TensorShape([None, *f.row_shape]), trainable=False,
                    name=f.name)
        for f in self.fields])

  def read(self, variables: Rows, only: Sequence[str] = ()) -> Rows:
    """One consistent snapshot (`ops.read_rows`) of all stores, or of `only`,
    in value dtypes."""
    names = [n for n in self.names if not only or n in only]
    values = ops.read_rows([getattr(variables, n) for n in names])
    return self.from_storage(Rows(**dict(zip(names, values))))

  def from_storage(self, rows: Rows) -> Rows:
    """Stored values (uint32 bit stores) -> value dtypes; None stays None."""
    return Rows(*(self._cast(f, v, to_storage=False) for f, v in zip(self._all(), rows)))

  def to_storage(self, names: Sequence[str], values: Sequence) -> list:
    """Values of the stores `names` -> what their variables hold."""
    return [self._cast(self.field(n), v, to_storage=True) for n, v in zip(names, values)]

  def _all(self):
    return [self.field(n) for n in Rows._fields]

  @staticmethod
  def _cast(field, value, to_storage):
    if value is None or field is None or field.storage is None:
      return value
    target = field.storage if to_storage else field.dtype
    if isinstance(value, np.ndarray):
      return value.view(target.as_numpy_dtype)
    value = tf.convert_to_tensor(value)
    return value if value.dtype == target else tf.bitcast(value, target)

  def bytes_per_item(self) -> dict:
    """Bytes per slot of each fixed-width store."""
    out = {}
    for f in self.fields:
      if f.dtype != tf.string:
        size = f.storage_dtype.size
        for d in f.row_shape:
          size *= d
        out[f.name] = size
    return out
