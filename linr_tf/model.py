"""`RetrievalModel`: two towers + the in-model `ItemIndex`, trained with `model.fit`.

    model = RetrievalModel.from_data(cfg, catalog, interactions)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    train, test = make_datasets(cfg, catalog, interactions)
    model.fit(train, validation_data=test, epochs=3,
              callbacks=[RefreshIndex(model, catalog)])
    model.build_index(catalog)
    scores, ids, count = model.retrieve({"user_id": ["u1"]}, ['lang = "en"'], k=10)

Training is TFRS's in-batch softmax (`tfrs.tasks.Retrieval`) with the
sampling-bias (log-q) correction; evaluation is TFRS `FactorizedTopK` recall,
retrieved through the LiNR index and its custom op (`IndexTopK`).
"""

import json
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from linr_tf import config as config_lib
from linr_tf.data.csv_io import Catalog, Interactions
from linr_tf import filter_kinds as filter_kinds_lib
from linr_tf.attributes import AttributeSchema
from linr_tf.columns import ColumnSchema
from linr_tf.index import IndexTopK, ItemIndex
from linr_tf.quantization import RaBitQ, SignOPORP
from linr_tf.towers import Tower

SAMPLING_PROBABILITY = "__sampling_probability__"
TOP_KS = (10, 50, 100)


def build_vocabularies(cfg: config_lib.Config, catalog: Catalog,
                       interactions: Interactions) -> Dict[str, list]:
  """Sorted distinct values of every id/categorical feature."""
  vocabs = {}
  for specs, columns in ((cfg.query_features, interactions.columns),
                         (cfg.item_features, catalog.columns)):
    for spec in specs:
      if spec.is_numeric:
        continue
      values = columns[spec.name]
      if spec.multivalued:
        values = [v for cell in values for v in cell.split(cfg.separator) if v]
      vocabs[spec.name] = sorted(set(values))
  return vocabs


def item_features(cfg: config_lib.Config, columns: Mapping[str, np.ndarray]
                  ) -> Dict[str, np.ndarray]:
  """The item tower's inputs, cast to the dtypes the tower expects."""
  return {s.name: s.column(columns[s.name]) for s in cfg.item_features}


def query_features(cfg: config_lib.Config, columns: Mapping[str, np.ndarray]
                   ) -> Dict[str, np.ndarray]:
  return {s.name: s.column(columns[s.name]) for s in cfg.query_features}


def filter_columns(cfg: config_lib.Config, columns: Mapping[str, np.ndarray]):
  """Bucketed filter attributes: (categorical columns, numeric (values, boundaries)).

  Only the attributes of the bitset (the "bitset" and "buckets" kinds, and
  categorical ones; value-id columns are passed too and ignored by the bitset
  encoder); `filter_schemas` decides the kinds.
  """
  numeric_specs = cfg.numeric_attributes
  categorical = {a: columns[a] for a in cfg.filter_attributes
                 if not cfg.is_numeric_attribute(a)}
  numeric = {a: (columns[a], list(numeric_specs[a].boundaries))
             for a in cfg.filter_attributes if a in numeric_specs}
  return categorical, numeric


def filter_schemas(cfg: config_lib.Config, columns: Mapping[str, np.ndarray]
                   ) -> Tuple[AttributeSchema, Optional[ColumnSchema]]:
  """(bitset schema, column schema or None) of the filter attributes over a
  catalogue: each attribute's kind from `cfg.filter_kind` or, for a
  categorical attribute without one, from its cardinality
  (`index.value_ids_min_cardinality`); through `choose_kinds`."""
  categorical = {a: columns[a] for a in cfg.filter_attributes
                 if not cfg.is_numeric_attribute(a)}
  numeric = {a: columns[a] for a in cfg.filter_attributes if cfg.is_numeric_attribute(a)}
  kinds = {a: cfg.filter_kind(a) for a in cfg.filter_attributes
           if cfg.filter_kind(a) is not None}
  boundaries = {a: list(s.boundaries) for a, s in cfg.numeric_features.items()}
  bits_schema, columns_schema = filter_kinds_lib.choose_kinds(
      categorical, numeric, kinds=kinds,
      bitset_max_values=cfg.index.value_ids_min_cardinality - 1,
      boundaries=boundaries, separator=cfg.separator)
  if not columns_schema.attributes:
    return bits_schema, None
  return bits_schema, columns_schema


def columns_metadata(columns: Optional[ColumnSchema]):
  """A `ColumnSchema` as JSON-able data (None stays None)."""
  if columns is None:
    return None
  return {"numbers": dict(columns.numbers), "values": dict(columns.values),
          "vocabulary": {a: columns.vocabulary(a) for a in columns.values}}


def columns_from_metadata(meta) -> Optional[ColumnSchema]:
  if not meta:
    return None
  return ColumnSchema(meta["numbers"], meta["values"], meta["vocabulary"])


def split_by_time(interactions: Interactions, holdout_fraction: float
                  ) -> Tuple[np.ndarray, np.ndarray]:
  """Row positions of the train split and the newest `holdout_fraction`."""
  if not 0.0 <= holdout_fraction < 1.0:
    raise ValueError("holdout_fraction must be in [0, 1)")
  order = np.argsort(interactions.timestamp, kind="stable")
  n_test = int(round(len(order) * holdout_fraction))
  return order[:len(order) - n_test], order[len(order) - n_test:]


def make_datasets(cfg: config_lib.Config, catalog: Catalog,
                  interactions: Interactions
                  ) -> Tuple[tf.data.Dataset, tf.data.Dataset]:
  """(train, held-out) datasets of query + item features per engagement."""
  train_rows, test_rows = split_by_time(interactions,
                                        cfg.train.holdout_fraction)
  counts = np.bincount(interactions.item_pos[train_rows],
                       minlength=len(catalog)).astype(np.float64)
  # Items absent from training get a floor so the log-q correction stays finite.
  probability = np.maximum(counts, 0.5) / max(len(train_rows), 1)

  def dataset(rows, shuffle):
    pos = interactions.item_pos[rows]
    feats = query_features(cfg, {k: v[rows] for k, v in
                                 interactions.columns.items()})
    feats.update(item_features(cfg, catalog.rows(pos)))
    feats[SAMPLING_PROBABILITY] = probability[pos].astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(feats)
    if shuffle:
      ds = ds.shuffle(len(rows), seed=cfg.train.seed,
                      reshuffle_each_iteration=True)
    return ds.batch(cfg.train.batch_size).prefetch(tf.data.AUTOTUNE)

  return dataset(train_rows, True), dataset(test_rows, False)


class RetrievalModel(tfrs.Model):
  """Query tower, item tower and item index in one Keras model."""

  def __init__(self, cfg: config_lib.Config, vocabularies: Mapping[str, list],
               bit_keys: Sequence[str], columns: Optional[ColumnSchema] = None):
    """`columns`: the column stores (exact numbers, value ids) of the filter
    attributes of those kinds (`filter_schemas`), None without any."""
    super().__init__()
    self.cfg = cfg
    self.schema = AttributeSchema(bit_keys)
    self.columns = columns
    # Kept as text: Keras would wrap a dict attribute for tracking.
    self._metadata = json.dumps({"config": json.loads(cfg.to_json()),
                                 "vocabularies": dict(vocabularies),
                                 "bit_keys": list(bit_keys),
                                 "columns": columns_metadata(columns)})
    self.query_tower = Tower(cfg.query_features, vocabularies,
                             cfg.embedding_dim, cfg.hidden_units,
                             cfg.separator, name="query_tower")
    self.item_tower = Tower(cfg.item_features, vocabularies, cfg.embedding_dim,
                            cfg.hidden_units, cfg.separator, name="item_tower")
    quantizer = None
    if cfg.index.code_factors:
      quantizer = RaBitQ(cfg.embedding_dim, cfg.index.code_bits, cfg.index.code_seed,
                         cfg.index.query_bits)
    elif cfg.index.code_bits:
      quantizer = SignOPORP(cfg.embedding_dim, cfg.index.code_bits, cfg.index.code_seed)
    self.index = ItemIndex(cfg.embedding_dim, bit_keys, vectors=cfg.index.vectors,
                           quantizer=quantizer, rerank_factor=cfg.index.rerank_factor,
                           columns=columns, ranking=cfg.ranking, name="item_index")
    self.task = tfrs.tasks.Retrieval(
        metrics=tfrs.metrics.FactorizedTopK(
            candidates=IndexTopK(self.index, k=max(TOP_KS)), ks=TOP_KS),
        temperature=cfg.train.temperature,
        remove_accidental_hits=True)

  @classmethod
  def from_data(cls, cfg: config_lib.Config, catalog: Catalog,
                interactions: Interactions) -> "RetrievalModel":
    schema, columns = filter_schemas(cfg, catalog.columns)
    return cls(cfg, build_vocabularies(cfg, catalog, interactions), schema.keys, columns)

  def compute_loss(self, features, training=False):
    q = self.query_tower(features)
    c = self.item_tower(features)
    return self.task(
        q, c,
        candidate_sampling_probability=features[SAMPLING_PROBABILITY],
        candidate_ids=features[self.cfg.item_id_feature],
        compute_metrics=not training)

  def embed_items(self, catalog: Catalog, batch_size: int = 4096) -> np.ndarray:
    feats = item_features(self.cfg, catalog.columns)
    out = [self.item_tower({k: v[i:i + batch_size] for k, v in feats.items()})
           for i in range(0, len(catalog), batch_size)]
    return tf.concat(out, axis=0).numpy()

  def build_index(self, catalog: Catalog) -> None:
    """Index construction as a model step: embed the catalogue and assign."""
    categorical, numeric = filter_columns(self.cfg, catalog.columns)
    numbers = value_ids = None
    if self.columns is not None:
      # Values the schema has not seen (a catalogue other than the training
      # one) get new ids, registered in the index's value_id_of table.
      numbers, value_ids = self.columns.encode(
          {a: catalog.columns[a] for a in self.columns.attributes}, self.cfg.separator,
          grow=True)
      self.index.register_values()
    self.index.assign(catalog.ids,
                      attributes=self.schema.encode({**categorical, **numeric},
                                                    self.cfg.separator),
                      numbers=numbers, value_ids=value_ids, **self.item_rows(catalog))

  def item_rows(self, catalog: Catalog) -> dict:
    """The catalogue's row arguments of `ItemIndex.assign`: {"embeddings":
    [N, dim]} (a MoL model: [N, Q, dim] and "cluster_ids")."""
    return {"embeddings": self.embed_items(catalog)}

  def retrieve(self, features: Mapping[str, Sequence], filters=None, k=10):
    """Encodes queries and searches the index: (scores, ids, count)."""
    known = {s.name for s in self.cfg.query_features}
    unknown = sorted(set(features) - known)
    if unknown:
      raise ValueError(f"unknown query feature(s) {unknown}; this model takes "
                       f"{sorted(known)}")
    q = self.query_tower({k_: tf.convert_to_tensor(v) for k_, v in
                          features.items()})
    if filters is not None:
      filters = tf.convert_to_tensor(filters, tf.string)
    return self.index(q, filters, k)

  def metadata(self) -> str:
    """JSON needed to rebuild this model before restoring a checkpoint (the
    column schema as it is now: `build_index` may have added values)."""
    meta = json.loads(self._metadata)
    meta["columns"] = columns_metadata(self.columns)
    return json.dumps(meta)

  @classmethod
  def from_metadata(cls, text: str) -> "RetrievalModel":
    meta = json.loads(text)
    return cls(config_lib.from_dict(meta["config"]), meta["vocabularies"],
               meta["bit_keys"], columns_from_metadata(meta.get("columns")))


class RefreshIndex(tf.keras.callbacks.Callback):
  """Rebuilds the index from the current item tower before each evaluation."""

  def __init__(self, model: RetrievalModel, catalog: Catalog):
    super().__init__()
    self._target = model
    self._catalog = catalog

  def on_test_begin(self, logs=None):
    self._target.build_index(self._catalog)
