"""`ItemIndex`: the item catalogue as model variables, searched exhaustively
and updated live.

    index = ItemIndex(dim=64, bit_keys=schema.keys)
    index.assign(ids, embeddings, schema.encode(attribute_columns))
    scores, ids, count = index(query_embeddings, filters, k=10)
    index.upsert(["new-item"], [7], new_embeddings, new_bits)   # live update

State (saved with the model; one row per slot, leading dimension = capacity):
  * `ids` [capacity] string — external item ids ("" = never used; a deleted
    slot keeps its stale rows until reused, only its bitset is cleared);
  * `versions` [capacity] int64 — version of each item's last applied change;
  * `attributes` [capacity, W] int32 — attribute bitsets; bit 0 (`__live__`)
    is the validity mask, so a free or deleted slot is one with bit 0 clear;
  * `vectors` [capacity, dim] float32 / float16 / bfloat16 — the vectors scored
    exactly (absent when `vectors=None`);
  * `codes` [capacity, m / 32] int32 — 1-bit Sign-OPORP codes (only with a
    `quantizer`), scored by matching bits (`SignOPORP`) or asymmetrically
    against a quantized query (`RaBitQ`), then reranked with `vectors`;
  * `code_factors` [capacity] float32 — the per-item factor of the `RaBitQ`
    estimator (only with a `RaBitQ` quantizer), written with the codes;
  * `slot_of` (id -> slot) and `deleted` (id -> version of its delete) hash
    tables, `free_slots` and `num_slots` (slots ever used): the write side;
  * `bit_keys` [num_bits] string — what each attribute bit means;
  * with a `ColumnSchema` (`columns`): `numbers` [capacity, A] int64 (exact
    numeric attributes) and `value_ids` [capacity, V] int32 (high-cardinality
    categorical values, ELL rows), row stores written atomically with the
    rest; `number_columns` / `value_columns` (their specs) and `value_id_of`
    ("attr=value" -> id) for the filter compiler (`linr_tf/column_filters.py`).

The stores are described once by a `RowLayout` (`rows.py`); `index.rows` is
the `Rows` of variables and `index.read_rows()` one consistent snapshot.

Search path: one consistent snapshot of the row stores (`LinrReadRows`) ->
filter strings -> pass mask (`kernels.pass_mask`: `LinrCompileFilter` with
"AND __live__" appended, then `LinrFilterMask`) -> the searcher chosen at
construction (`linr_tf.search`: `ExactSearch`, `HammingSearch` or
`RefineSearch`) -> top-k slots -> external ids.

Write path (`upsert`, `delete`, `update_attributes`): under a writer mutex,
version checks against `versions` / `deleted`, slot allocation (free slots
first, growth beyond the capacity by doubling), then one `ops.write_rows` over
all row variables, atomic for readers: a query sees an item wholly before or
wholly after a change, never a torn row or a deleted item.

Version rule, per item id: with last = the item's version, else the version of
its delete, else none, an upsert or delete applies iff last is none or
version > last; update_attributes applies iff the item exists and version >
its version. Re-applying a change is therefore a no-op.
"""

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import gen_resource_variable_ops

from linr_tf import attributes as attributes_lib
from linr_tf import column_filters
from linr_tf import ops
from linr_tf import search as search_lib
from linr_tf.columns import ColumnSchema
from linr_tf.index import checks
from linr_tf.index.rows import RowLayout, Rows
from linr_tf.quantization.rabitq import RaBitQ
from linr_tf.quantization.sign_oporp import SignOPORP
from linr_tf.search.mol import MoLSearch


class WriteResult(NamedTuple):
  """What a live update did, per item: `applied` bool [B] and
  `previous_version` int64 [B], the version the rule compared against (the
  item's version, or its delete's for upsert/delete; -1 = none; for
  update_attributes -1 also when the item is not in the index)."""
  applied: tf.Tensor
  previous_version: tf.Tensor


class WriterLock(tf.saved_model.experimental.TrackableResource):
  """A mutex (TF `MutexV2`) saved with the model; serializes index writers."""

  def _create_resource(self):
    return gen_resource_variable_ops.mutex_v2()

  def _initialize(self):
    pass

  def run(self, body):
    """Runs `body()` (which builds ops and returns tensors) under the mutex."""
    lock = gen_resource_variable_ops.mutex_lock(self.resource_handle)
    with tf.control_dependencies([lock]):
      result = body()
    flat = tf.nest.flatten(result)
    with tf.control_dependencies(flat):
      release = gen_resource_variable_ops.consume_mutex_lock(lock)
    with tf.control_dependencies([release]):
      return tf.nest.map_structure(tf.identity, result)


class ItemIndex(tf.keras.layers.Layer):
  """Exhaustive, attribute-pre-filtered, live-updated inner-product index.

  Args:
    dim: embedding width.
    bit_keys: the attribute bit layout (`AttributeSchema.keys`).
    capacity: initial number of slots (grows on demand).
    vectors: dtype of the stored vectors ("float32", "float16", "bfloat16"),
      or None to keep only codes (needs a quantizer).
    quantizer: a `SignOPORP` encoder (items are also stored as 1-bit codes and
      searched by matching bits) or a `RaBitQ` quantizer (the same codes plus
      one float32 factor per item, searched against a quantized query:
      `RaBitQSearch`); top `rerank_factor * k` reranked exactly with the
      vectors (when kept).
    rerank_factor: candidates per result for the rerank (>= 1).
    mol_scorer: a `linr_tf.mol.MixtureOfLogits` (P query, Q item components):
      a Mixture-of-Logits index. Items are [Q, dim] rows (`mol_vectors`, in
      `vectors`' dtype; `vectors` holds each item's mean component), queries
      [B, P, dim], searched by `MoLSearch` (exhaustive `LinrMoLTopK`, or with
      `mol_rerank` > 0 a dot top-`mol_rerank` then an exact MoL rerank);
      `num_clusters` > 0 adds the `cluster_ids` store (each item's cluster,
      written with its rows). No codes.
  """

  def __init__(self, dim: int, bit_keys: Sequence[str], capacity: int = 0,
               vectors: Optional[str] = "float32",
               quantizer: Optional[Union[SignOPORP, RaBitQ]] = None,
               rerank_factor: int = 10,
               columns: Optional[ColumnSchema] = None,
               ranking=None,
               mol_scorer=None, num_clusters: int = 0, mol_rerank: int = 0,
               **kwargs):
    super().__init__(**kwargs)
    schema = attributes_lib.AttributeSchema(bit_keys)
    self.dim = int(dim)
    self.num_words = schema.num_words
    if quantizer is not None and quantizer.dim != self.dim:
      raise ValueError(f"quantizer dim {quantizer.dim} != index dim {self.dim}")
    self.quantizer = quantizer
    # Chosen once: ExactSearch, HammingSearch or RefineSearch (checks the args).
    self.mol_scorer = mol_scorer   # tracked: the SavedModel holds its gate
    self.num_clusters = int(num_clusters) if mol_scorer is not None else 0
    if mol_scorer is not None and (quantizer is not None or vectors is None or ranking):
      raise ValueError("a Mixture-of-Logits index keeps vectors, no 1-bit codes and no "
                       "ranking features (index.code_bits must be 0, no `ranking`)")
    self.searcher = (MoLSearch(mol_scorer, mol_rerank) if mol_scorer is not None
                     else search_lib.make_searcher(vectors, quantizer, rerank_factor))
    self.layout = RowLayout.for_index(self.dim, self.num_words, vectors,
                                      quantizer.num_words if quantizer else 0,
                                      code_factors=isinstance(quantizer, RaBitQ),
                                      number_columns=len(columns.numbers) if columns else 0,
                                      value_width=columns.value_width if columns else 0,
                                      rank_dense=len(ranking.dense_features) if ranking else 0,
                                      rank_ids=len(ranking.vocab_sizes) if ranking else 0,
                                      mol_components=mol_scorer.num_item if mol_scorer else 0,
                                      mol_dtype=vectors or "float32",
                                      cluster_ids=self.num_clusters > 0)
    self.columns = columns
    # The ranker's candidate features (`linr_tf.ranking.RankingConfig`): row stores.
    self.ranking = ranking
    # One attribute per store (checkpoint names "ids", "vectors", ...).
    for name, var in zip(Rows._fields, self.layout.make_variables(capacity)):
      setattr(self, name, var)
    self.bit_keys = tf.Variable(schema.keys, shape=tf.TensorShape([None]),
                                trainable=False, name="bit_keys")
    if columns is not None:
      self.number_columns = tf.Variable(tf.constant(columns.number_specs, tf.string, [len(columns.numbers)]),
                                        shape=tf.TensorShape([None]), trainable=False,
                                        name="number_columns")
      self.value_columns = tf.Variable(tf.constant(columns.value_specs, tf.string, [len(columns.values)]),
                                       shape=tf.TensorShape([None]), trainable=False,
                                       name="value_columns")
      self.value_id_of = tf.lookup.experimental.MutableHashTable(
          tf.string, tf.int64, default_value=-1, name="value_id_of")
      # The id the next new value gets (values added in-graph by
      # `encode_columns(..., grow=True)` under the writer lock).
      self.next_value_id = tf.Variable(tf.constant(0, tf.int64), trainable=False,
                                       name="next_value_id")
      self.register_values()
    self.slot_of = tf.lookup.experimental.MutableHashTable(
        tf.string, tf.int64, default_value=-1, name="slot_of")
    self.deleted = tf.lookup.experimental.MutableHashTable(
        tf.string, tf.int64, default_value=-1, name="deleted")
    self.free_slots = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]),
                                  trainable=False, name="free_slots")
    self.num_slots = tf.Variable(tf.constant(0, tf.int64), trainable=False,
                                 name="num_slots")
    self.writer_lock = WriterLock()
    if quantizer is not None:
      self.code_fingerprint = tf.Variable(tf.constant(quantizer.fingerprint, tf.int64),
                                          trainable=False, name="code_fingerprint")

  # --- state -----------------------------------------------------------------

  @property
  def rows(self) -> Rows:
    """The row variables (`Rows`; absent stores are None)."""
    return Rows(*(getattr(self, name) for name in Rows._fields))

  @property
  def row_variables(self):
    """The present row variables, in layout order (what `read_rows` takes)."""
    return self.rows.present()

  @property
  def kernels(self):
    """The searcher's kernel set (`CustomOpKernels`)."""
    return self.searcher.kernels

  @property
  def item_shape(self) -> Tuple[int, ...]:
    """Shape of one item's embedding: (dim,), or (Q, dim) for MoL."""
    return (self.mol_scorer.num_item, self.dim) if self.mol_scorer else (self.dim,)

  @property
  def query_shape(self) -> Tuple[int, ...]:
    """Shape of one query embedding: (dim,), or (P, dim) for MoL."""
    return (self.mol_scorer.num_query, self.dim) if self.mol_scorer else (self.dim,)

  @property
  def supports_updates(self) -> bool:
    return self.kernels.supports_updates

  def read_rows(self, only: Sequence[str] = ()) -> Rows:
    """One consistent snapshot of the row stores (all, or those in `only`)."""
    return self.kernels.read(self.layout, self.rows, only)

  @property
  def capacity(self) -> tf.Tensor:
    return tf.shape(self.read_rows(["ids"]).ids)[0]

  @property
  def valid(self) -> tf.Tensor:
    """[capacity] bool: slots holding a live item (bit 0 of the bitset)."""
    return attributes_lib.is_live(self.read_rows(["attributes"]).attributes)

  def register_values(self) -> None:
    """Puts every value id of `self.columns` into `value_id_of` (after
    `columns.add_values` or `encode(..., grow=True)` gave new ones)."""
    keys, ids = self.columns.value_keys()
    if keys:
      self.value_id_of.insert(tf.constant(keys, tf.string), tf.constant(ids, tf.int64))
    self.next_value_id.assign(tf.maximum(self.next_value_id,
                                         tf.constant(self.columns.num_values, tf.int64)))

  def encode_columns(self, columns, separator: str = "|", grow: bool = True):
    """In-graph `ColumnSchema.encode`: raw attribute columns -> (numbers int64
    [B, A], value_ids int32 [B, V]) for `upsert` / `update_attributes`.

    `columns` holds every column attribute: numbers as float [B] (or int64 [B]
    for an "int64" column: a float with a fraction, NaN or Inf is an
    InvalidArgumentError naming the attribute; NaN too for "float64");
    value-id cells as tf.string [B] (several values joined by `separator`, ""
    = none). With `grow`, a value `value_id_of` does not know gets the next
    id, under the writer lock (so concurrent writers never give one id
    twice); without, it is an InvalidArgumentError naming the attribute and
    the value. More values in a cell than the attribute's width is an
    InvalidArgumentError naming the attribute. (The Python `self.columns`
    does not learn in-graph values: rebuild it from `value_id_of.export()`
    with `ColumnSchema.from_specs` before encoding more in Python.)
    """
    if self.columns is None:
      raise ValueError("this index has no column stores")
    schema = self.columns
    missing = [a for a in schema.attributes if a not in columns]
    if missing:
      raise ValueError(f"missing attribute column(s) {missing}")
    number_cols, checks = [], []
    for attr, dtype in schema.numbers.items():
      value = tf.convert_to_tensor(columns[attr])
      if dtype == "int64" and value.dtype.is_integer:
        number_cols.append(tf.cast(value, tf.int64))
        continue
      value = tf.cast(value, tf.float64)
      if dtype == "int64":
        ok = tf.reduce_all(tf.math.is_finite(value) & tf.equal(tf.floor(value), value))
        checks.append(tf.debugging.Assert(ok, [
            f"attribute '{attr}': int64 column got NaN, infinite or fractional value(s)",
            tf.boolean_mask(value, ~(tf.math.is_finite(value)
                                     & tf.equal(tf.floor(value), value)))[:5]]))
        number_cols.append(tf.cast(value, tf.int64))
      else:
        checks.append(tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(tf.math.is_nan(value))),
            [f"attribute '{attr}': NaN value"]))
        number_cols.append(tf.bitcast(value, tf.int64))
    value_cols = []
    for attr, width in schema.values.items():
      value_cols.append(self._encode_value_cells(attr, width, columns[attr], separator,
                                                 grow, checks))
    first = (number_cols + value_cols)[0]
    batch = tf.shape(first)[0]
    numbers = (tf.stack(number_cols, axis=1) if number_cols
               else tf.zeros(tf.stack([batch, 0]), tf.int64))
    value_ids = (tf.concat(value_cols, axis=1) if value_cols
                 else tf.zeros(tf.stack([batch, 0]), tf.int32))
    for name, col in zip(list(schema.numbers) + list(schema.values), number_cols + value_cols):
      checks.append(tf.debugging.assert_equal(
          tf.shape(col)[0], batch, message=f"attribute column '{name}' has a different length"))
    with tf.control_dependencies(checks):
      return tf.identity(numbers), tf.identity(value_ids)

  def _encode_value_cells(self, attr, width, cells, separator, grow, checks):
    """ELL rows int32 [B, width] of one value-id attribute (sorted, unique, -1 padded)."""
    cells = tf.convert_to_tensor(cells, tf.string)
    split = tf.strings.split(cells, separator)
    flat = split.flat_values
    keep = tf.not_equal(flat, "")
    values = tf.boolean_mask(flat, keep)
    rows = tf.boolean_mask(split.value_rowids(), keep)
    keys = attr + "=" + values
    if grow:
      added = self._add_values(tf.unique(keys).y)
      with tf.control_dependencies([added]):
        keys = tf.identity(keys)
    ids = tf.reshape(self.value_id_of.lookup(keys), [-1])
    unknown = tf.boolean_mask(values, ids < 0)
    checks.append(tf.debugging.Assert(
        tf.equal(tf.size(unknown), 0),
        [f"attribute '{attr}': unknown value(s) (not in the index's value_id_of)",
         unknown[:5]], summarize=5))
    batch = tf.shape(cells, out_type=tf.int64)[0]
    big = tf.int64.max
    ragged = tf.RaggedTensor.from_value_rowids(tf.where(ids < 0, big, ids), rows, nrows=batch)
    dense = ragged.to_tensor(default_value=big)
    dense = tf.concat([dense, tf.fill(tf.stack([batch, tf.constant(width, tf.int64)]), big)], 1)
    dense = tf.sort(dense, axis=1)
    dup = tf.equal(dense[:, 1:], dense[:, :-1])
    dense = tf.sort(tf.concat([dense[:, :1], tf.where(dup, big, dense[:, 1:])], 1), axis=1)
    held = tf.reduce_sum(tf.cast(tf.not_equal(dense, big), tf.int32), axis=1)
    checks.append(tf.debugging.Assert(
        tf.reduce_all(held <= width),
        [f"attribute '{attr}': an item holds more than {width} values (the attribute's "
         "width, from the catalogue); values per row:", held], summarize=10))
    out = dense[:, :width]
    return tf.cast(tf.where(tf.equal(out, big), tf.constant(-1, tf.int64), out), tf.int32)

  def _add_values(self, keys):
    """Gives "attr=value" `keys` that `value_id_of` lacks the next ids, under
    the writer lock; returns how many were new."""
    def body():
      found = tf.reshape(self.value_id_of.lookup(keys), [-1])
      new = tf.boolean_mask(keys, found < 0)
      start = self.next_value_id.read_value()
      count = tf.size(new, out_type=tf.int64)
      inserted = self.value_id_of.insert(new, start + tf.range(count, dtype=tf.int64))
      with tf.control_dependencies([inserted]):
        bumped = self.next_value_id.assign(start + count)
      with tf.control_dependencies([bumped]):
        return tf.identity(count)
    return self.writer_lock.run(body)

  def filter_columns(self, rows: Rows):
    """What column leaves of filters read from a snapshot (None without columns)."""
    if self.columns is None:
      return None
    n = tf.shape(rows.attributes)[0]
    numbers = rows.numbers if rows.numbers is not None else tf.zeros([n, 0], tf.int64)
    value_ids = rows.value_ids if rows.value_ids is not None else tf.zeros([n, 0], tf.int32)
    return column_filters.FilterColumns(self.number_columns, self.value_columns,
                                        self.value_id_of, self.slot_of, numbers, value_ids)

  def _column_rows(self, numbers, value_ids, batch):
    """Checked values of the column stores for `batch` items ([] without columns)."""
    out, checks = [], []
    for name, value, dtype in (("numbers", numbers, tf.int64), ("value_ids", value_ids, tf.int32)):
      field = self.layout.field(name)
      if field is None:
        empty = value is not None and getattr(value, "shape", (1,))[-1:] == (0,)
        if value is not None and not empty:  # [N, 0]: nothing of that kind
          raise ValueError(f"this index has no {name} store")
        continue
      if value is None:
        raise ValueError(f"this index stores {name}: pass them (ColumnSchema.encode)")
      value = tf.ensure_shape(tf.convert_to_tensor(value, dtype), [None, *field.row_shape])
      checks.append(tf.debugging.assert_equal(
          tf.shape(value)[0], batch, message=f"item ids and {name} differ in length"))
      out.append(value)
    return out, checks

  def _rank_rows(self, rank_dense, rank_ids, batch):
    """Checked values of the ranking stores for `batch` items ([] without a
    ranker); a store not passed is zeros (set later by `update_rank_features`)."""
    out, checks = [], []
    for name, value in (("rank_dense", rank_dense), ("rank_ids", rank_ids)):
      field = self.layout.field(name)
      if field is None:
        if value is not None and getattr(value, "shape", (1,))[-1:] != (0,):
          raise ValueError(f"this index has no {name} store (no ranking features)")
        continue
      if value is None:
        value = tf.zeros(tf.stack([tf.cast(batch, tf.int32), field.row_shape[0]]), field.dtype)
      value = tf.ensure_shape(tf.cast(tf.convert_to_tensor(value), field.dtype),
                              [None, *field.row_shape])
      checks.append(tf.debugging.assert_equal(
          tf.shape(value)[0], tf.cast(batch, tf.int32),
          message=f"item ids and {name} differ in length"))
      if name == "rank_dense":
        checks.append(tf.debugging.assert_all_finite(value, "rank_dense holds NaN or Inf"))
      else:
        sizes = tf.constant(self.ranking.vocab_sizes, tf.int64)
        checks.append(tf.debugging.Assert(
            tf.reduce_all((value >= 0) & (value < sizes)),
            [f"rank_ids out of range: id feature i takes [0, vocab_size_i), vocab sizes",
             sizes], summarize=20))
      out.append(value)
    return out, checks

  def update_rank_features(self, ids, versions, rank_dense=None, rank_ids=None
                           ) -> WriteResult:
    """Replaces the ranking features of existing items (the rule of
    `update_attributes`: applies iff the item exists and version > its
    version); versions and both ranking stores are written in one
    `write_rows`, so a search sees an item's old or new features, never a mix."""
    if self.ranking is None:
      raise ValueError("this index has no ranking features")
    ids, versions, checks = self._check_batch(ids, versions)
    names = [n for n in ("rank_dense", "rank_ids") if self.layout.field(n) is not None]
    if rank_dense is None and "rank_dense" in names or rank_ids is None and "rank_ids" in names:
      raise ValueError(f"update_rank_features needs {names}")
    values, rank_checks = self._rank_rows(rank_dense, rank_ids, tf.size(ids))
    checks += rank_checks

    def body():
      slot, last = self._last_versions(ids)
      applied = (slot >= 0) & (versions > last)
      written = ops.write_rows(
          [self.versions] + [getattr(self, n) for n in names],
          tf.boolean_mask(slot, applied),
          [tf.boolean_mask(versions, applied)] + [tf.boolean_mask(v, applied) for v in values],
          min_rows=0)
      with tf.control_dependencies([written]):
        return WriteResult(tf.identity(applied),
                           tf.where(slot >= 0, last, -tf.ones_like(last)))

    with tf.control_dependencies(checks):
      return self.writer_lock.run(body)

  def memory_per_item_bytes(self) -> dict:
    """Bytes per slot of each row store (what an item costs in memory)."""
    return {name: size for name, size in self.layout.bytes_per_item().items()
            if name != "ids"}

  def _encode_rows(self, embeddings):
    """Row values of the vector stores for float32 [B, dim] embeddings."""
    out = []
    if self.mol_scorer is not None:   # MoL: the mean component (two-stage search)
      embeddings = tf.math.l2_normalize(tf.reduce_mean(embeddings, axis=1), -1)
    if self.vectors is not None:
      out.append(tf.cast(embeddings, self.vectors.dtype))
    if self.code_factors is not None:
      out.extend(self.quantizer.encode_items(embeddings))
    elif self.codes is not None:
      out.append(self.quantizer.encode(embeddings))
    return out

  def _mol_rows(self, embeddings, cluster_ids, batch):
    """Checked values of the MoL stores (`mol_vectors` [B, Q, dim], and
    `cluster_ids` [B] int32 in [0, num_clusters)) ([] for a dot index)."""
    if self.mol_scorer is None:
      if cluster_ids is not None:
        raise ValueError("this index has no cluster_ids store (not a MoL index with clusters)")
      return [], []
    out = [tf.cast(embeddings, self.mol_vectors.dtype)]
    if not self.num_clusters:
      if cluster_ids is not None:
        raise ValueError("this MoL index has no clusters (mol.clusters = 0): no cluster_ids")
      return out, []
    if cluster_ids is None:
      raise ValueError(f"this MoL index stores each item's cluster: pass cluster_ids "
                       f"([B] in [0, {self.num_clusters}))")
    cluster_ids = tf.ensure_shape(tf.cast(tf.convert_to_tensor(cluster_ids), tf.int32), [None])
    checks = [
        tf.debugging.assert_equal(tf.size(cluster_ids), tf.cast(batch, tf.int32),
                                  message="item ids and cluster_ids differ in length"),
        tf.debugging.Assert(
            tf.reduce_all((cluster_ids >= 0) & (cluster_ids < self.num_clusters)),
            [f"cluster_ids must be in [0, {self.num_clusters}), got", cluster_ids],
            summarize=10)]
    return out + [cluster_ids], checks

  def _check_embeddings(self, embeddings):
    embeddings = tf.convert_to_tensor(embeddings, tf.float32)
    shape = list(self.item_shape)
    if embeddings.shape.rank is not None and (
        embeddings.shape.rank != 1 + len(shape) or
        any(got not in (None, want) for got, want in zip(embeddings.shape[1:], shape))):
      what = ", ".join(map(str, shape))
      raise ValueError(f"embeddings must be [N, {what}], got {embeddings.shape}")
    embeddings = tf.ensure_shape(embeddings, [None, *shape])
    return tf.debugging.check_numerics(embeddings, "embeddings contain NaN or Inf")

  def _check_batch(self, ids, versions):
    ids = tf.ensure_shape(tf.convert_to_tensor(ids, tf.string), [None])
    versions = tf.ensure_shape(tf.cast(tf.convert_to_tensor(versions), tf.int64), [None])
    unique = tf.unique(ids).y
    checks = [
        tf.debugging.assert_equal(tf.size(versions), tf.size(ids),
                                  message="item ids and versions differ in length"),
        tf.debugging.assert_equal(tf.size(unique), tf.size(ids),
                                  message="item ids must be unique within one update"),
        tf.debugging.assert_equal(tf.reduce_any(tf.equal(ids, "")), False,
                                  message="item ids must be non-empty"),
        tf.debugging.assert_non_negative(versions, message="versions must be >= 0"),
    ]
    return ids, versions, checks

  def assign(self, ids, embeddings, attributes, versions=None, numbers=None,
             value_ids=None, rank_dense=None, rank_ids=None, cluster_ids=None) -> None:
    """Replaces the whole index (index construction as a model step).

    Not atomic for concurrent searches: use `upsert` / `delete` on a served
    index.
    """
    ids, versions = checks.check_keys(
        [i.decode() if isinstance(i, bytes) else i for i in np.asarray(ids).reshape(-1)],
        versions)
    n = ids.size
    if self.mol_scorer is not None:   # [N, Q, d]; then the NaN / Inf check
      embeddings = np.asarray(embeddings, np.float32)
      if embeddings.shape != (n, *self.item_shape):
        raise ValueError(f"embeddings must be [{n}, {', '.join(map(str, self.item_shape))}] "
                         f"(N items x Q components x d), got {list(embeddings.shape)}")
      width = int(np.prod(self.item_shape))
      embeddings = checks.check_embeddings(embeddings.reshape(n, width),
                                           width).reshape(embeddings.shape)
    else:
      embeddings = checks.check_embeddings(embeddings, self.dim)
    attributes = np.asarray(attributes, np.int32)
    if attributes.ndim != 2 or attributes.shape[1] != self.num_words:
      raise ValueError(f"attributes must be [N, {self.num_words}], got "
                       f"{list(attributes.shape)}")
    if not embeddings.shape[0] == attributes.shape[0] == n:
      raise ValueError(f"ids ({n}), embeddings ({embeddings.shape[0]}) and "
                       f"attributes ({attributes.shape[0]}) differ in length")
    ids = tf.constant(ids.astype(str) if n else np.zeros([0], str), tf.string)
    versions = tf.constant(versions, tf.int64)
    columns, _ = self._column_rows(numbers, value_ids, n)
    if n and isinstance(self.quantizer, RaBitQ):
      self.quantizer.set_center(embeddings)   # the catalogue's mean (FAISS's centroid)
    values = ([ids, versions, attributes] + self._encode_rows(tf.constant(embeddings))
              + columns + self._rank_rows(rank_dense, rank_ids, n)[0]
              + self._mol_rows(tf.constant(embeddings), cluster_ids, n)[0])
    for var, value in zip(self.row_variables, self.layout.to_storage(self.layout.names, values)):
      var.assign(value)
    for table in (self.slot_of, self.deleted):
      keys, _ = table.export()
      table.remove(keys)
    self.slot_of.insert(ids, tf.range(n, dtype=tf.int64))
    self.free_slots.assign(tf.zeros([0], tf.int64))
    self.num_slots.assign(n)

  # --- search ----------------------------------------------------------------

  def search(self, queries: tf.Tensor, filters: Optional[tf.Tensor], k,
             strategy: str = "auto", snapshot: Optional[Rows] = None
             ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Top-k slots: (scores [B, k], slots [B, k] (-1 = padding), count [B]).

    `strategy`: "mask" (similarity masking), "prefilter" (explicit
    pre-filtering) or "auto" (chosen per request from the measured pass rate);
    one the searcher does not support (`strategies`) is a ValueError.
    `snapshot`: a `read_rows()` (read here when None).
    """
    if snapshot is None:
      snapshot = self.read_rows()
    return search_slots(self.searcher, snapshot, self.bit_keys, queries, filters, k,
                        strategy, self.filter_columns(snapshot))

  def search_codes(self, query_codes, fingerprint, filters: Optional[tf.Tensor], k
                   ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Top-k items for queries encoded elsewhere: (matching bits [B, k], ids
    [B, k], count [B]); codes only, no rerank.

    `fingerprint` (int64 scalar) must be the `SignOPORP.fingerprint` of the
    encoder that made `query_codes`: codes of another seed, m or dim are
    rejected (InvalidArgumentError), as are codes of the wrong width.
    """
    if self.codes is None:
      raise ValueError("this index holds no codes (configure index.code_bits)")
    words = self.quantizer.num_words
    query_codes = tf.convert_to_tensor(query_codes, tf.int32)
    checks = [
        tf.debugging.assert_equal(
            tf.shape(query_codes)[-1], words,
            message=f"query codes must have {words} int32 words "
                    f"({self.quantizer.num_bits} bits) per query"),
        tf.debugging.assert_equal(
            tf.cast(fingerprint, tf.int64), self.code_fingerprint,
            message="query codes come from a different Sign-OPORP encoder (seed, "
                    "number of bits or dim) than the index's"),
    ]
    with tf.control_dependencies(checks):
      query_codes = tf.identity(query_codes)
    if filters is None:
      filters = tf.fill(tf.shape(query_codes)[:1], "")
    rows = self.read_rows()
    passing = self.kernels.pass_mask(filters, self.bit_keys, rows.attributes,
                                     *self._columns_arg(rows))
    found = search_lib.HammingSearch(self.quantizer, self.kernels).match(
        query_codes, rows, passing, k)
    return found.scores, slots_to_ids(rows.ids, found.indices), found.count

  def call(self, queries: tf.Tensor, filters: Optional[tf.Tensor] = None,
           k=10, strategy: str = "auto"
           ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Top-k items: (scores [B, k], ids [B, k] ("" = padding), count [B])."""
    rows = self.read_rows()
    scores, slots, count = self.search(queries, filters, k, strategy, rows)
    return scores, slots_to_ids(rows.ids, slots), count

  # --- live updates ------------------------------------------------------------

  def _last_versions(self, ids):
    """(slot [B] (-1 = absent), last version [B] (-1 = never seen))."""
    slot = tf.reshape(self.slot_of.lookup(ids), [-1])
    versions = self.read_rows(["versions"]).versions
    current = tf.gather(versions, tf.maximum(slot, 0))
    last = tf.where(slot >= 0, current, tf.reshape(self.deleted.lookup(ids), [-1]))
    return slot, last

  def _columns_arg(self, rows):
    """() or (FilterColumns,): the optional last argument of `pass_mask`."""
    columns = self.filter_columns(rows)
    return () if columns is None else (columns,)

  def upsert(self, ids, versions, embeddings, attributes, numbers=None,
             value_ids=None, rank_dense=None, rank_ids=None, cluster_ids=None) -> WriteResult:
    """Inserts or replaces items; returns a `WriteResult` (applied False =
    stale or repeated version).

    Args:
      ids: string [B] distinct, non-empty item ids.
      versions: int64 [B] >= 0.
      embeddings: float32 [B, dim] (MoL: [B, Q, dim]), finite.
      attributes: int32 [B, W] bitsets (`__live__` is set here).
      cluster_ids: int32 [B] (a MoL index with clusters only), written
        with the rows in the same `write_rows`.
    """
    ids, versions, checks = self._check_batch(ids, versions)
    embeddings = self._check_embeddings(embeddings)
    attributes = tf.ensure_shape(tf.convert_to_tensor(attributes, tf.int32),
                                 [None, self.num_words])
    checks.append(tf.debugging.assert_equal(
        tf.shape(embeddings)[0], tf.size(ids),
        message="item ids and embeddings differ in length"))
    checks.append(tf.debugging.assert_equal(
        tf.shape(attributes)[0], tf.size(ids),
        message="item ids and attributes differ in length"))
    attributes = attributes_lib.set_live(attributes)
    stores = self._encode_rows(embeddings)
    columns, column_checks = self._column_rows(numbers, value_ids, tf.size(ids))
    stores += columns
    checks += column_checks
    rank, rank_checks = self._rank_rows(rank_dense, rank_ids, tf.size(ids))
    stores += rank
    checks += rank_checks
    mol, mol_checks = self._mol_rows(embeddings, cluster_ids, tf.size(ids))
    stores += mol
    checks += mol_checks

    def body():
      slot, last = self._last_versions(ids)
      applied = (last < 0) | (versions > last)
      new = applied & (slot < 0)
      num_new = tf.reduce_sum(tf.cast(new, tf.int64))
      free = self.free_slots.read_value()
      num_free = tf.size(free, out_type=tf.int64)
      reused = tf.minimum(num_new, num_free)
      fresh = num_new - reused
      start = self.num_slots.read_value()
      new_slots = tf.concat([free[num_free - reused:],
                             start + tf.range(fresh, dtype=tf.int64)], 0)
      slot = tf.tensor_scatter_nd_update(slot, tf.where(new), new_slots)
      take = tf.where(applied)[:, 0]
      rows = tf.gather(slot, take)
      values = [tf.gather(ids, take), tf.gather(versions, take),
                tf.gather(attributes, take)] + [tf.gather(s, take) for s in stores]
      written = ops.write_rows(self.row_variables, rows,
                               self.layout.to_storage(self.layout.names, values),
                               min_rows=start + fresh)
      with tf.control_dependencies([written]):
        updates = [
            self.free_slots.assign(free[:num_free - reused]),
            self.num_slots.assign(start + fresh),
            self.slot_of.insert(values[0], rows),
            self.deleted.remove(values[0]),
        ]
      with tf.control_dependencies(updates):
        return WriteResult(tf.identity(applied), tf.identity(last))

    with tf.control_dependencies(checks):
      return self.writer_lock.run(body)

  def delete(self, ids, versions) -> WriteResult:
    """Deletes items; returns a `WriteResult` (applied False = stale or
    repeated version).

    A delete of an unknown id is recorded, so an older upsert arriving later
    stays ignored.
    """
    ids, versions, checks = self._check_batch(ids, versions)

    def body():
      slot, last = self._last_versions(ids)
      applied = (last < 0) | (versions > last)
      removed = applied & (slot >= 0)
      rows = tf.boolean_mask(slot, removed)
      # Clearing the attribute bitset (live bit included) is the delete: the
      # slot's other rows are never read again until it is reused, and leaving
      # them spares copying the large stores while searches hold them.
      written = ops.write_rows([self.attributes], rows,
                               [tf.zeros([tf.size(rows), self.num_words], tf.uint32)],
                               min_rows=0)
      with tf.control_dependencies([written]):
        updates = [
            self.free_slots.assign(tf.concat([self.free_slots.read_value(), rows], 0)),
            self.slot_of.remove(tf.boolean_mask(ids, removed)),
            self.deleted.insert(tf.boolean_mask(ids, applied),
                                tf.boolean_mask(versions, applied)),
        ]
      with tf.control_dependencies(updates):
        return WriteResult(tf.identity(applied), tf.identity(last))

    with tf.control_dependencies(checks):
      return self.writer_lock.run(body)

  def update_attributes(self, ids, versions, attributes, numbers=None,
                        value_ids=None) -> WriteResult:
    """Replaces attribute bitsets of existing items (vectors kept); returns a
    `WriteResult` (applied False = stale or repeated version, or unknown
    item: previous_version -1)."""
    ids, versions, checks = self._check_batch(ids, versions)
    attributes = tf.ensure_shape(tf.convert_to_tensor(attributes, tf.int32),
                                 [None, self.num_words])
    checks.append(tf.debugging.assert_equal(
        tf.shape(attributes)[0], tf.size(ids),
        message="item ids and attributes differ in length"))
    attributes = attributes_lib.set_live(attributes)
    # The column stores (numbers, value ids) are attributes too: written with them.
    columns, column_checks = self._column_rows(numbers, value_ids, tf.size(ids))
    column_names = [n for n in ("numbers", "value_ids") if self.layout.field(n) is not None]
    checks += column_checks

    def body():
      slot, last = self._last_versions(ids)
      applied = (slot >= 0) & (versions > last)
      written = ops.write_rows(
          [self.versions, self.attributes] + [getattr(self, n) for n in column_names],
          tf.boolean_mask(slot, applied),
          self.layout.to_storage(["versions", "attributes"] + column_names,
                                 [tf.boolean_mask(versions, applied),
                                  tf.boolean_mask(attributes, applied)]
                                 + [tf.boolean_mask(c, applied) for c in columns]),
          min_rows=0)
      with tf.control_dependencies([written]):
        return WriteResult(tf.identity(applied),
                           tf.where(slot >= 0, last, -tf.ones_like(last)))

    with tf.control_dependencies(checks):
      return self.writer_lock.run(body)

  def items(self):
    """numpy view of the live items: `Rows` of arrays (absent stores None)."""
    rows = Rows(*(None if t is None else t.numpy() for t in self.read_rows()))
    live = attributes_lib.is_live(rows.attributes)
    return Rows(*(None if a is None else a[live] for a in rows))


def slots_to_ids(ids: tf.Tensor, slots: tf.Tensor) -> tf.Tensor:
  """External ids of top-k slots ("" for padding, slot -1)."""
  return tf.where(slots >= 0, tf.gather(ids, tf.maximum(slots, 0)), "")


def search_slots(searcher, rows: Rows, bit_keys, queries, filters, k,
                 strategy: str = "auto", columns=None
                 ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """query -> filter -> score -> top-k over a snapshot: (scores, slots, count)."""
  queries = tf.convert_to_tensor(queries, tf.float32)
  if filters is None:
    filters = tf.fill(tf.shape(queries)[:1], "")
  extra = () if columns is None else (columns,)  # column stores (`FilterColumns`)
  passing = searcher.kernels.pass_mask(filters, bit_keys, rows.attributes, *extra)
  found = searcher.search(queries, rows, passing, k, strategy)
  return found.scores, found.indices, found.count
