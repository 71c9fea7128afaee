"""`MoLRetrievalModel`: two towers with P query and Q item embeddings, scored
by `MixtureOfLogits`, trained with `model.fit` and the TFRS retrieval task.

    cfg = config.load("configs/mol_movielens.json")
    model = MoLRetrievalModel(cfg, vocabularies)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    model.fit(train_ds, epochs=3)
    model.cluster_items(catalog_features)            # k-means, a model step
    model.fit(train_ds, epochs=1)                    # with the cluster component

As the product model (`linr_tf train` with a `mol` section in the config):
a `RetrievalModel` whose `query_tower` emits [B, P, d] and `item_tower`
{"embeddings": [B, Q, d], "cluster_ids": [B]}, with an `ItemIndex` holding
the MoL row stores, so `build_index`, `retrieve`, `metadata` and the export
(`linr_tf.export`) are the dot-product model's:

    model = MoLRetrievalModel.from_data(cfg, catalog, interactions)
    model.fit_with_clusters(train_ds, catalog, epochs=4)   # fit, k-means, fit
    model.build_index(catalog)
    scores, ids, count = model.retrieve({"user_id": ["u1"]}, ['genre = "Drama"'], k=10)

Training is TFRS's in-batch softmax (`tfrs.tasks.Retrieval`: temperature,
log-q correction, accidental hits removed) over the MoL score matrix: the
task takes the [B, B] scores as "query embeddings" against an identity
"candidate" matrix, so its matmul returns the MoL scores unchanged. With an
index, evaluation is TFRS `FactorizedTopK` recall (id-based) through the
index's MoL search.

Item side: `item_embeddings` content components from the item tower (ids,
genres, year...) plus, once `cluster_items` has run, one more component:
the embedding of the item's cluster (k-means over the content embeddings;
fixed or trainable). An item unknown to the cluster table (a cold item)
gets its nearest cluster in-graph from its content embedding.
"""

import json
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from linr_tf import config as config_lib
from linr_tf.attributes import AttributeSchema
from linr_tf import model as model_lib
from linr_tf.index import IndexTopK, ItemIndex
from linr_tf.mol.clusters import ItemClusters, kmeans
from linr_tf.mol.layer import MixtureOfLogits
from linr_tf.towers import Tower

SAMPLING_PROBABILITY = model_lib.SAMPLING_PROBABILITY


def split_components(x, count: int, dim: int):
  """[B, count * dim] -> [B, count, dim], each component L2-normalised."""
  return tf.math.l2_normalize(tf.reshape(x, [-1, count, dim]), axis=-1)


class QueryEncoder(tf.keras.layers.Layer):
  """A tower of width P * d as P unit query components [B, P, d]."""

  def __init__(self, tower, count: int, dim: int, **kwargs):
    super().__init__(**kwargs)
    self.tower, self.count, self.dim = tower, int(count), int(dim)

  def call(self, features):
    return split_components(self.tower(features), self.count, self.dim)


class ItemEncoder(tf.keras.layers.Layer):
  """Item features -> {"embeddings": [B, Q, d], "cluster_ids": [B] int32 (with
  clusters)}: the item tower's Q_content unit components plus, once
  clustered, the (normalised) embedding of the item's cluster: its k-means
  cluster for an id in `cluster_table`, else (a cold item) the cluster
  nearest its mean content component, in-graph."""

  def __init__(self, tower, count: int, dim: int, item_id_feature: str,
               clusters: Optional[ItemClusters] = None, cluster_table=None, **kwargs):
    super().__init__(**kwargs)
    self.tower, self.count, self.dim = tower, int(count), int(dim)
    self.item_id_feature = item_id_feature
    self.clusters, self.cluster_table = clusters, cluster_table
    # Python state (set by `cluster_items`, and from the model's metadata):
    # before clustering the cluster component is the item's mean content.
    self.clustered = False

  def content(self, features):
    return split_components(self.tower(features), self.count, self.dim)

  def cluster_ids(self, features, content=None):
    if content is None:
      content = self.content(features)
    nearest = self.clusters.nearest(tf.reduce_mean(content, axis=1))
    known = self.cluster_table.lookup(features[self.item_id_feature])
    return tf.where(known >= 0, known, nearest)

  def call(self, features, cluster_ids=None):
    content = self.content(features)
    if self.clusters is None:
      return {"embeddings": content}
    if not self.clustered:
      # Before clustering: the item's own unit mean content component (the
      # centroid of a cluster of one). A zero component let the softmax gate
      # route to its zero dot products: in bench/mol.py one seed in two fell
      # below random recall in the first epoch.
      own = tf.math.l2_normalize(tf.reduce_mean(content, axis=1, keepdims=True), axis=-1)
      return {"embeddings": tf.concat([content, own], axis=1),
              "cluster_ids": tf.zeros(tf.shape(content)[:1], tf.int32)}
    if cluster_ids is None:
      cluster_ids = self.cluster_ids(features, content)
    component = tf.math.l2_normalize(self.clusters(cluster_ids), axis=-1)
    return {"embeddings": tf.concat([content, component[:, None, :]], axis=1),
            "cluster_ids": tf.cast(cluster_ids, tf.int32)}


class MoLRetrievalModel(model_lib.RetrievalModel):
  """Query tower (P embeddings), item tower (Q embeddings), MoL scorer and,
  given `bit_keys`, the MoL `ItemIndex` (see the module docstring).

  The dot model's constructor is not run (its towers have one embedding of
  width d); everything else of `RetrievalModel` (`from_data`,
  `from_metadata`, `build_index`, `retrieve`) works on the attributes set
  here."""

  def __init__(self, cfg, vocabularies: Mapping[str, list],
               bit_keys: Optional[Sequence[str]] = None, columns=None):
    tfrs.Model.__init__(self)   # pylint: disable=non-parent-init-called
    if cfg.mol is None:
      raise ValueError("MoLRetrievalModel needs a config with a `mol` section")
    self.cfg, m, d = cfg, cfg.mol, cfg.embedding_dim
    self.dim = d
    self.num_query, self.num_content = m.query_embeddings, m.item_embeddings
    query_tower = Tower(cfg.query_features, vocabularies, self.num_query * d,
                        cfg.hidden_units, cfg.separator, name="query_tower")
    item_tower = Tower(cfg.item_features, vocabularies, self.num_content * d,
                       cfg.hidden_units, cfg.separator, name="item_tower")
    self.num_item = self.num_content + (1 if m.clusters else 0)
    self.scorer = MixtureOfLogits(self.num_query, self.num_item, m.gate_units, m.gate,
                                  name="mol")
    # Cluster variables exist from the start (the optimizer and the traced
    # train step see them); `cluster_items` fills them.
    self.clusters: Optional[ItemClusters] = None
    self.cluster_table = None
    if m.clusters:
      self.clusters = ItemClusters(np.zeros([m.clusters, d], np.float32),
                                   m.cluster_mode == "trainable", name="clusters")
      self.cluster_table = tf.lookup.experimental.MutableHashTable(
          tf.string, tf.int32, default_value=-1, name="cluster_of")
    # What RetrievalModel and the export call "towers".
    self.query_tower = QueryEncoder(query_tower, self.num_query, d, name="query_encoder")
    self.item_tower = ItemEncoder(item_tower, self.num_content, d, cfg.item_id_feature,
                                  self.clusters, self.cluster_table, name="item_encoder")
    self.index = None
    metrics = None
    if bit_keys is not None:
      if cfg.index.code_bits or cfg.ranking is not None:
        raise ValueError("mol: 1-bit codes (index.code_bits) and `ranking` are not "
                         "supported with Mixture-of-Logits scoring")
      self.schema = AttributeSchema(bit_keys)
      self.columns = columns
      self._metadata = json.dumps({"config": json.loads(cfg.to_json()),
                                   "vocabularies": dict(vocabularies),
                                   "bit_keys": list(bit_keys),
                                   "columns": model_lib.columns_metadata(columns)})
      self.index = ItemIndex(d, bit_keys, vectors=m.vector_dtype, columns=columns,
                             mol_scorer=self.scorer, num_clusters=m.clusters,
                             mol_rerank=m.rerank_candidates, name="item_index")
      metrics = tfrs.metrics.FactorizedTopK(
          candidates=IndexTopK(self.index, k=max(model_lib.TOP_KS)), ks=model_lib.TOP_KS)
    self.task = tfrs.tasks.Retrieval(metrics=metrics, temperature=cfg.train.temperature,
                                     remove_accidental_hits=True)

  @property
  def _clustered(self) -> bool:
    return self.item_tower.clustered

  # ------------------------------------------------------------- embeddings
  def query_embeddings(self, features) -> tf.Tensor:
    """[B, P, d] unit components."""
    return self.query_tower(features)

  def content_embeddings(self, features) -> tf.Tensor:
    """[B, Q_content, d] unit components from the item tower."""
    return self.item_tower.content(features)

  def item_cluster_ids(self, features, content=None) -> tf.Tensor:
    """Cluster id [B] of each item: the k-means assignment of a known item id,
    else (cold items) the cluster nearest its mean content component."""
    return self.item_tower.cluster_ids(features, content)

  def item_embeddings(self, features, cluster_ids=None) -> tf.Tensor:
    """[B, Q, d]: content components (+ the cluster component, once clustered)."""
    return self.item_tower(features, cluster_ids)["embeddings"]

  # ---------------------------------------------------------------- training
  def compute_loss(self, features, training=False):
    q = self.query_embeddings(features)
    e = self.item_embeddings(features)
    scores = self.scorer(q, e)                                    # [B, B] MoL scores
    eye = tf.eye(tf.shape(scores)[0])
    ids = features[self.cfg.item_id_feature]
    loss = self.task(scores, eye,
                     candidate_sampling_probability=features[SAMPLING_PROBABILITY],
                     candidate_ids=ids, compute_metrics=False)
    if not training and self.index is not None:
      # Id-based recall through the index (MoL search); the "true candidate
      # embeddings" are not read by an id-based update.
      updates = [metric.update_state(q, q, true_candidate_ids=ids)
                 for metric in self.task.factorized_metrics]
      with tf.control_dependencies([u for u in updates if u is not None]):
        loss = tf.identity(loss)
    return loss

  def fit_with_clusters(self, train_ds, catalog, epochs: int, seed: int = 0, **fit_kwargs):
    """`fit` for ceil(epochs / 2) epochs, `cluster_items` over the catalogue
    (k-means, a model step), `fit` for the rest (the towers and gate learn
    the cluster component). Without clusters, one plain `fit`. Returns the
    last Keras History."""
    if self.clusters is None:
      return self.fit(train_ds, epochs=epochs, **fit_kwargs)
    first = (epochs + 1) // 2
    history = self.fit(train_ds, epochs=first, **fit_kwargs)
    self.cluster_items(model_lib.item_features(self.cfg, catalog.columns), seed=seed)
    if epochs > first:
      history = self.fit(train_ds, initial_epoch=first, epochs=epochs, **fit_kwargs)
    return history

  # ------------------------------------------------------------------ index
  def item_rows(self, catalog, batch_size: int = 4096) -> dict:
    """{"embeddings": [N, Q, d], "cluster_ids": [N] (with clusters)} of the
    catalogue (`ItemIndex.assign`'s row arguments)."""
    feats = model_lib.item_features(self.cfg, catalog.columns)
    parts = [self.item_tower({k: v[i:i + batch_size] for k, v in feats.items()})
             for i in range(0, len(catalog), batch_size)]
    return {name: np.concatenate([p[name].numpy() for p in parts]) for name in parts[0]}

  def embed_items(self, catalog, batch_size: int = 4096) -> np.ndarray:
    """[N, Q, d] item embeddings of the catalogue."""
    return self.item_rows(catalog, batch_size)["embeddings"]

  def metadata(self) -> str:
    meta = json.loads(super().metadata())
    meta["mol_clustered"] = bool(self._clustered)
    return json.dumps(meta)

  @classmethod
  def from_metadata(cls, text: str) -> "MoLRetrievalModel":
    meta = json.loads(text)
    model = cls(config_lib.from_dict(meta["config"]), meta["vocabularies"],
                meta["bit_keys"], model_lib.columns_from_metadata(meta.get("columns")))
    model.item_tower.clustered = bool(meta.get("mol_clustered"))
    return model

  # ---------------------------------------------------------------- clusters
  def cluster_items(self, item_features: Dict[str, np.ndarray], seed: int = 0,
                    batch_size: int = 4096) -> np.ndarray:
    """Re-clustering (a model step): k-means over the items' mean content
    component; sets (or resets) the cluster embeddings and the id -> cluster
    table. Returns the assignment [N]."""
    m = self.cfg.mol
    if not m.clusters:
      raise ValueError("mol.clusters is 0: this model has no cluster component")
    n = len(next(iter(item_features.values())))
    content = np.concatenate([
        tf.reduce_mean(self.content_embeddings(
            {k: v[i:i + batch_size] for k, v in item_features.items()}), axis=1).numpy()
        for i in range(0, n, batch_size)])
    if n < m.clusters:
      raise ValueError(f"mol.clusters={m.clusters} needs at least as many items, got {n}")
    centroids, assign = kmeans(content, m.clusters, m.kmeans_iterations, seed)
    self.clusters.assign_centroids(centroids)
    keys, _ = self.cluster_table.export()
    self.cluster_table.remove(keys)
    ids = np.asarray(item_features[self.cfg.item_id_feature]).astype(str)
    self.cluster_table.insert(tf.constant(ids), tf.constant(assign, tf.int32))
    self.item_tower.clustered = True
    # The traced train / test steps saw no cluster component: trace again.
    self.train_function = self.test_function = self.predict_function = None
    return assign
