"""`MoLRetrievalModel`: two towers with P query and Q item embeddings, scored
by `MixtureOfLogits`, trained with `model.fit` and the TFRS retrieval task.

    cfg = dataclasses.replace(config.load("configs/mol_movielens.json"))
    model = MoLRetrievalModel(cfg, vocabularies)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    model.fit(train_ds, epochs=3)
    model.cluster_items(catalog_features)            # k-means, a model step
    model.fit(train_ds, epochs=1)                    # with the cluster component

Training is TFRS's in-batch softmax (`tfrs.tasks.Retrieval`: temperature,
log-q correction, accidental hits removed) over the MoL score matrix: the
task takes the [B, B] scores as "query embeddings" against an identity
"candidate" matrix, so its matmul returns the MoL scores unchanged.

Item side: `item_embeddings` content components from the item tower (ids,
genres, year...) plus, once `cluster_items` has run, one more component:
the embedding of the item's cluster (k-means over the content embeddings;
fixed or trainable). An item unknown to the cluster table (a cold item)
gets its nearest cluster in-graph from its content embedding.
"""

from typing import Dict, Mapping, Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from linr_tf.mol.clusters import ItemClusters, kmeans
from linr_tf.mol.layer import MixtureOfLogits
from linr_tf.towers import Tower

SAMPLING_PROBABILITY = "__sampling_probability__"


def split_components(x, count: int, dim: int):
  """[B, count * dim] -> [B, count, dim], each component L2-normalised."""
  return tf.math.l2_normalize(tf.reshape(x, [-1, count, dim]), axis=-1)


class MoLRetrievalModel(tfrs.Model):
  """Query tower (P embeddings), item tower (Q embeddings), MoL scorer."""

  def __init__(self, cfg, vocabularies: Mapping[str, list]):
    super().__init__()
    if cfg.mol is None:
      raise ValueError("MoLRetrievalModel needs a config with a `mol` section")
    self.cfg, m, d = cfg, cfg.mol, cfg.embedding_dim
    self.dim = d
    self.num_query, self.num_content = m.query_embeddings, m.item_embeddings
    self.query_tower = Tower(cfg.query_features, vocabularies, self.num_query * d,
                             cfg.hidden_units, cfg.separator, name="query_tower")
    self.item_tower = Tower(cfg.item_features, vocabularies, self.num_content * d,
                            cfg.hidden_units, cfg.separator, name="item_tower")
    self.num_item = self.num_content + (1 if m.clusters else 0)
    self.scorer = MixtureOfLogits(self.num_query, self.num_item, m.gate_units, m.gate,
                                  name="mol")
    # Cluster variables exist from the start (the optimizer and the traced
    # train step see them); `cluster_items` fills them.
    self.clusters: Optional[ItemClusters] = None
    self.cluster_table = None
    self._clustered = False
    if m.clusters:
      self.clusters = ItemClusters(np.zeros([m.clusters, d], np.float32),
                                   m.cluster_mode == "trainable", name="clusters")
      self.cluster_table = tf.lookup.experimental.MutableHashTable(
          tf.string, tf.int32, default_value=-1, name="cluster_of")
    self.task = tfrs.tasks.Retrieval(temperature=cfg.train.temperature,
                                     remove_accidental_hits=True)

  # ------------------------------------------------------------- embeddings
  def query_embeddings(self, features) -> tf.Tensor:
    """[B, P, d] unit components."""
    return split_components(self.query_tower(features), self.num_query, self.dim)

  def content_embeddings(self, features) -> tf.Tensor:
    """[B, Q_content, d] unit components from the item tower."""
    return split_components(self.item_tower(features), self.num_content, self.dim)

  def item_cluster_ids(self, features, content=None) -> tf.Tensor:
    """Cluster id [B] of each item: the k-means assignment of a known item id,
    else (cold items) the cluster nearest its mean content component."""
    if content is None:
      content = self.content_embeddings(features)
    nearest = self.clusters.nearest(tf.reduce_mean(content, axis=1))
    known = self.cluster_table.lookup(features[self.cfg.item_id_feature])
    return tf.where(known >= 0, known, nearest)

  def item_embeddings(self, features, cluster_ids=None) -> tf.Tensor:
    """[B, Q, d]: content components (+ the cluster component, once clustered)."""
    content = self.content_embeddings(features)
    if self.num_item == self.num_content:
      return content
    if not self._clustered:
      # Before clustering: a zero cluster component (scores see Q_content dots).
      return tf.concat([content, tf.zeros_like(content[:, :1])], axis=1)
    if cluster_ids is None:
      cluster_ids = self.item_cluster_ids(features, content)
    component = tf.math.l2_normalize(self.clusters(cluster_ids), axis=-1)
    return tf.concat([content, component[:, None, :]], axis=1)

  # ---------------------------------------------------------------- training
  def compute_loss(self, features, training=False):
    q = self.query_embeddings(features)
    e = self.item_embeddings(features)
    scores = self.scorer(q, e)                                    # [B, B] MoL scores
    eye = tf.eye(tf.shape(scores)[0])
    return self.task(scores, eye,
                     candidate_sampling_probability=features[SAMPLING_PROBABILITY],
                     candidate_ids=features[self.cfg.item_id_feature],
                     compute_metrics=False)

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
    self._clustered = True
    # The traced train / test steps saw no cluster component: trace again.
    self.train_function = self.test_function = self.predict_function = None
    return assign
