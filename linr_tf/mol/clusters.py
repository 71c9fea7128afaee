"""Item clusters: k-means over item embeddings, cluster embeddings as one item
component, nearest cluster in-graph for items that arrive later.

    centroids, assign = kmeans(item_vectors, num_clusters=100, seed=0)
    clusters = ItemClusters(centroids, trainable=False)
    ids = clusters.nearest(new_item_vectors)           # [M] int32, in-graph
    component = clusters(ids)                          # [M, d]

Re-clustering is a model step, like building the index: run `kmeans` over the
current item embeddings and `ItemClusters.assign_centroids`.
"""

import numpy as np
import tensorflow as tf


def kmeans(vectors, num_clusters: int, iterations: int = 25, seed: int = 0):
  """Spherical k-means (dot-product assignment, unit centroids) of float
  [N, d] `vectors`: (centroids float32 [C, d], assignment int32 [N]).
  k-means++ seeding from `seed`; an emptied cluster is re-seeded with the
  point worst served by its centroid."""
  x = np.asarray(vectors, np.float64)
  n = len(x)
  if not 1 <= num_clusters <= n:
    raise ValueError(f"num_clusters must be in [1, {n}] (the number of items), got {num_clusters}")
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  rng = np.random.default_rng(seed)
  centers = [x[rng.integers(n)]]
  best = x @ centers[0]
  for _ in range(1, num_clusters):
    dist = np.maximum(2.0 - 2.0 * best, 0.0)
    total = dist.sum()
    pick = rng.integers(n) if total <= 0 else rng.choice(n, p=dist / total)
    centers.append(x[pick])
    best = np.maximum(best, x @ x[pick])
  c = np.stack(centers)
  assign = np.zeros(n, np.int64)
  for _ in range(iterations):
    sims = x @ c.T
    assign = sims.argmax(axis=1)
    new = np.zeros_like(c)
    np.add.at(new, assign, x)
    counts = np.bincount(assign, minlength=num_clusters)
    for j in np.flatnonzero(counts == 0):
      worst = np.argmin(sims[np.arange(n), assign])
      new[j] = x[worst]
      assign[worst] = j
    c = new / np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
  assign = (x @ c.T).argmax(axis=1)
  return c.astype(np.float32), assign.astype(np.int32)


class ItemClusters(tf.keras.layers.Layer):
  """Cluster embeddings [C, d] (fixed or trainable) and nearest-cluster lookup."""

  def __init__(self, centroids, trainable_embeddings: bool = False, **kwargs):
    super().__init__(**kwargs)
    centroids = np.asarray(centroids, np.float32)
    if centroids.ndim != 2:
      raise ValueError(f"centroids must be [C, d], got shape {centroids.shape}")
    # The centroids (assignment) stay fixed; the embeddings may train.
    self.centroids = tf.Variable(centroids, trainable=False, name="centroids")
    self.embeddings = tf.Variable(centroids, trainable=bool(trainable_embeddings),
                                  name="cluster_embeddings")

  @property
  def num_clusters(self) -> int:
    return int(self.centroids.shape[0])

  def assign_centroids(self, centroids) -> None:
    """Re-clustering: new centroids and embeddings (same C and d)."""
    self.centroids.assign(centroids)
    self.embeddings.assign(centroids)

  def nearest(self, vectors):
    """Cluster id [M] int32 of float [M, d] vectors (max cosine to a centroid)."""
    vectors = tf.math.l2_normalize(tf.cast(vectors, tf.float32), axis=-1)
    return tf.argmax(tf.matmul(vectors, self.centroids, transpose_b=True), axis=-1,
                     output_type=tf.int32)

  def call(self, cluster_ids):
    """Embeddings [M, d] of cluster ids [M]."""
    return tf.gather(self.embeddings, cluster_ids)
