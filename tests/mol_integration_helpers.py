"""Shared by tests/mol_integration_*_test.py: a small MoL config over the
synthetic feed, the numpy Mixture-of-Logits reference computed from an
exported SavedModel's own variables, and filters evaluated in Python."""

import dataclasses
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "ops"))

from mol_reference import mol_scores_np, top_k_np  # noqa: E402  (tests/ops/)

# Filters and their Python meaning over an item's raw attributes.
FILTERS = {
    "": lambda a: True,
    'lang = "en"': lambda a: a["lang"] == "en",
    'topic IN ("ai", "ml") AND type IN ("post", "article")':
        lambda a: bool({"ai", "ml"} & set(a["topic"].split("|")))
        and a["type"] in ("post", "article"),
    'NOT country = "us" AND age_hours < 72': lambda a: a["country"] != "us"
                                                      and float(a["age_hours"]) < 72,
}
ATTRIBUTES = ("topic", "lang", "country", "type", "age_hours")


def write_config(directory, mol=True, **mol_overrides):
  """A small configs/mol_demo.json (d = 8, 2 epochs; MoL off: the dot
  product config it came from). Returns the file's path."""
  with open(os.path.join(REPO, "configs", "mol_demo.json"), encoding="utf-8") as f:
    d = json.load(f)
  d.update(embedding_dim=8, hidden_units=[16])
  d["train"].update(epochs=2, batch_size=256)
  if mol:
    d["mol"].update({"clusters": 8, "kmeans_iterations": 5, **mol_overrides})
  else:
    del d["mol"]
  path = os.path.join(directory, "mol.json" if mol else "dot.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(d, f)
  return path


def catalog_attributes(data_dir):
  """item id -> {attribute: raw string} from items.csv."""
  import csv  # pylint: disable=g-import-not-at-top
  with open(os.path.join(data_dir, "items.csv"), encoding="utf-8") as f:
    return {row["item_id"]: {a: row[a] for a in ATTRIBUTES} for row in csv.DictReader(f)}


class ExportedMoL:
  """The numpy view of a loaded MoL SavedModel: its index rows and gate."""

  def __init__(self, loaded):
    index = loaded.index
    self.ids = np.array([i.decode() for i in index.ids.numpy()])
    self.live = (index.attributes.numpy().view(np.int32)[:, 0] & 1) == 1
    self.rows = index.mol_vectors.numpy().astype(np.float64)
    self.cluster_ids = (index.cluster_ids.numpy().view(np.int32)
                        if getattr(index, "cluster_ids", None) is not None else None)
    scorer = index.mol_scorer
    self.gate = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in scorer.gate_mlp]
    self.gate_weight = scorer.weight.numpy()
    clusters = getattr(loaded.item_tower, "clusters", None)
    self.centroids = clusters.centroids.numpy() if clusters is not None else None
    self.cluster_embeddings = clusters.embeddings.numpy() if clusters is not None else None

  def slot(self, item_id):
    hit = np.flatnonzero((self.ids == item_id) & self.live)
    return int(hit[0]) if hit.size else -1

  def gate_bias(self, q):
    """The gate MLP over the flattened query components (numpy, float64)."""
    x = np.asarray(q, np.float64).reshape(len(q), -1)
    for j, (w, b) in enumerate(self.gate):
      x = x @ w + b
      if j < len(self.gate) - 1:
        x = np.maximum(x, 0.0)
    return x

  def top_k(self, q, filters, k, attributes):
    """Reference (scores, slots, count) of query embeddings [B, P, d] under
    `filters` (keys of FILTERS) over the live rows; `attributes`: id -> raw."""
    scores = mol_scores_np(q, self.rows, self.gate_bias(q), self.gate_weight)
    passes = np.zeros(scores.shape, bool)
    for b, f in enumerate(filters):
      for s in np.flatnonzero(self.live):
        passes[b, s] = FILTERS[f](attributes[self.ids[s]])
    return top_k_np(scores, passes, k)

  def slots_of(self, item_ids):
    """Returned item ids [B, k] -> slots ("" padding -> -1)."""
    lookup = {i: s for s, i in enumerate(self.ids) if self.live[s]}
    return np.array([[lookup[i.decode()] if i else -1 for i in row] for row in item_ids])


def nearest_cluster(content, centroids):
  """numpy: the centroid of max cosine to each item's mean content component."""
  mean = np.asarray(content, np.float64).mean(axis=1)
  mean /= np.linalg.norm(mean, axis=1, keepdims=True)
  return (mean @ np.asarray(centroids, np.float64).T).argmax(axis=1)


def unit_rows(rng, n, shape):
  x = rng.normal(size=(n, *shape))
  return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def replace_mol(cfg, **kw):
  return dataclasses.replace(cfg, mol=dataclasses.replace(cfg.mol, **kw))
