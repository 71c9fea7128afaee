"""Numpy checks of Mixture-of-Logits item rows before a write (`LiveIndex`,
ingestion events): a bad batch is a ValueError naming the problem, and the
item where there is one, before anything is applied.

    rows = check_item_rows(embeddings, (3, 8), ids)      # float32 [n, 3, 8]
    clusters = check_cluster_ids(cluster_ids, 50, ids)   # int32 [n]
"""

from typing import Optional, Sequence, Tuple

import numpy as np


def shape_text(shape: Sequence[int]) -> str:
  """'[Q, d] = [3, 8]' for an item row shape (3, 8)."""
  return f"[Q, d] = [{', '.join(str(int(s)) for s in shape)}]"


def check_item_rows(embeddings, shape: Tuple[int, int], ids: Sequence[str]) -> np.ndarray:
  """float32 [n, Q, d] finite rows, one per id."""
  n = len(ids)
  try:
    emb = np.asarray(embeddings, np.float32)
  except (TypeError, ValueError) as e:
    raise ValueError(f"embeddings must be [{n}, {int(shape[0])}, {int(shape[1])}] numbers "
                     f"(n items x {shape_text(shape)}): {e}") from None
  if emb.shape != (n, *shape):
    got = list(emb.shape)
    which = ""
    if emb.ndim >= 1 and emb.shape[0] == n and n:
      which = f" (item {ids[0]!r} has {got[1:]})"
    raise ValueError(f"embeddings must be [{n}, {int(shape[0])}, {int(shape[1])}] "
                     f"(n items x {shape_text(shape)}), got {got}{which}")
  bad = np.flatnonzero(~np.isfinite(emb.reshape(n, -1)).all(axis=1))
  if bad.size:
    raise ValueError(f"item {ids[int(bad[0])]!r}: embedding contains NaN or Inf")
  return emb


def check_cluster_ids(cluster_ids, num_clusters: int, ids: Sequence[str]
                      ) -> Optional[np.ndarray]:
  """int32 [n] cluster ids in [0, num_clusters) (None when the model has no
  clusters and none were given)."""
  n = len(ids)
  if not num_clusters:
    if cluster_ids is not None:
      raise ValueError("this model has no item clusters (mol.clusters = 0): "
                       "cluster_ids must not be given")
    return None
  if cluster_ids is None:
    raise ValueError(f"this model stores each item's cluster (mol.clusters = {num_clusters}): "
                     f"pass cluster_ids ([{n}] int in [0, {num_clusters}))")
  c = np.asarray(cluster_ids)
  if c.shape != (n,) or (n and not np.issubdtype(c.dtype, np.integer)):
    raise ValueError(f"cluster_ids must be [{n}] integers, got {c.dtype} {list(c.shape)}")
  bad = np.flatnonzero((c < 0) | (c >= num_clusters))
  if bad.size:
    i = int(bad[0])
    raise ValueError(f"item {ids[i]!r}: cluster_id {int(c[i])} is not in [0, {num_clusters})")
  return c.astype(np.int32)
