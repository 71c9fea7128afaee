"""A small synthetic catalogue with ratings for the ranking tests (issue 16)."""

import dataclasses

import numpy as np

from linr_tf import config as config_lib
from linr_tf.data.csv_io import Catalog, Interactions
from linr_tf.model import build_vocabularies, filter_schemas
from linr_tf.ranking.config import RankingConfig

GENRES = ["action", "drama", "comedy", "horror"]


def make_config(mode="joint", dim=8, hard_negatives=5, batch_size=64):
  return config_lib.Config(
      query_features=[config_lib.FeatureSpec("user_id", "id", 8)],
      item_features=[config_lib.FeatureSpec("item_id", "id", 8),
                     config_lib.FeatureSpec("genre", "categorical", 4)],
      filter_attributes=["genre"],
      embedding_dim=dim, hidden_units=[16],
      train=config_lib.TrainConfig(batch_size=batch_size, seed=1),
      ranking=RankingConfig(dense_features=["year", "popularity"],
                            id_features={"genre_id": len(GENRES)},
                            hidden_units=[16], mode=mode, hard_negatives=hard_negatives))


def make_data(num_items=60, num_users=20, per_user=12, seed=0):
  """(catalog, interactions, ratings): ratings grow with a hidden user-genre affinity."""
  rng = np.random.default_rng(seed)
  genre_id = rng.integers(0, len(GENRES), num_items)
  catalog = Catalog({
      "item_id": np.array([f"i{i}" for i in range(num_items)], object),
      "genre": np.array([GENRES[g] for g in genre_id], object),
      "genre_id": genre_id.astype(np.int64),
      "year": rng.uniform(-1, 1, num_items).astype(np.float32),
      "popularity": rng.uniform(0, 1, num_items).astype(np.float32),
  }, "item_id")
  likes = rng.integers(0, len(GENRES), num_users)
  users, items, ratings = [], [], []
  for u in range(num_users):
    for i in rng.choice(num_items, per_user, replace=False):
      users.append(f"u{u}")
      items.append(i)
      ratings.append(5.0 if genre_id[i] == likes[u] else float(rng.integers(1, 4)))
  interactions = Interactions({"user_id": np.array(users, object)}, np.array(items),
                              np.arange(len(items), dtype=np.float64))
  return catalog, interactions, np.array(ratings, np.float32)


def make_model(cfg, catalog, interactions):
  from linr_tf.ranking.model import JointModel  # pylint: disable=g-import-not-at-top
  schema, columns = filter_schemas(cfg, catalog.columns)
  return JointModel(cfg, build_vocabularies(cfg, catalog, interactions), schema.keys, columns)


def with_mode(cfg, mode):
  return dataclasses.replace(cfg, ranking=dataclasses.replace(cfg.ranking, mode=mode))


def numpy_ranker(ranker, query, item, dense, ids, score):
  """x0 = [q, v, q*v, dense, id embeddings, score]; Cross: x0 * (W x + b) + x; MLP; heads."""
  parts = [query, item]
  if query.shape[1] == item.shape[1]:
    parts.append(query * item)
  parts.append(dense)
  for i, emb in enumerate(ranker.id_embeddings):
    parts.append(emb.embeddings.numpy()[ids[:, i]])
  parts.append(score[:, None])
  x0 = np.concatenate(parts, 1).astype(np.float64)
  x = x0
  for cross in ranker.crosses:
    if cross._projection_dim is None:  # pylint: disable=protected-access
      w, b = cross._dense.kernel.numpy(), cross._dense.bias.numpy()  # pylint: disable=protected-access
      prod = x @ w + b
    else:
      u = cross._dense_u.kernel.numpy()  # pylint: disable=protected-access
      v, b = cross._dense_v.kernel.numpy(), cross._dense_v.bias.numpy()  # pylint: disable=protected-access
      prod = (x @ u) @ v + b
    x = x0 * prod + x
  for layer in ranker.mlp:
    x = np.maximum(x @ layer.kernel.numpy() + layer.bias.numpy(), 0)
  logit = x @ ranker.logit_head.kernel.numpy() + ranker.logit_head.bias.numpy()
  rating = x @ ranker.rating_head.kernel.numpy() + ranker.rating_head.bias.numpy()
  return logit[:, 0], rating[:, 0]
