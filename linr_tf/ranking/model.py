"""`JointModel`: retrieval and ranking in one Keras model, trained with `model.fit`.

    cfg = dataclasses.replace(cfg, ranking=RankingConfig(dense_features=["year"],
                                                        id_features={"genre_id": 20},
                                                        mode="cascade"))
    model = JointModel(cfg, vocabularies, bit_keys)
    model.set_catalog(catalog)           # "cascade": the catalogue retrieved in-model
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    model.fit(make_datasets(cfg, catalog, interactions, ratings)[0], epochs=3)
    model.build_index(catalog)           # vectors + ranking features as row stores
    out = model.retrieve_and_rank({"user_id": ["u1"]}, k_retrieve=100, k_final=10)

Loss = retrieval (TFRS in-batch softmax with log-q correction) +
rank_weight * ranking, where ranking = pointwise sigmoid cross-entropy of the
relevance logit (positives: examples rated >= positive_rating; one in-batch
negative per example: the next example's item) + rating_weight * rating MSE
over all examples, summed over
the batch like TFRS's retrieval loss. Modes:
  * separate: the ranking loss sees the retrieval embeddings through
    stop_gradient (each stage trained on its own loss: the baseline);
  * joint: both losses reach the shared towers;
  * cascade: joint, and each query's top `hard_negatives` items retrieved
    in-model (the catalogue through the item tower, then the top-k op, whose
    gradient reaches query and item embeddings) are negatives too (accidental
    hits of the positive item masked).
"""

from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from linr_tf import config as config_lib
from linr_tf.data.csv_io import Catalog
from linr_tf.model import SAMPLING_PROBABILITY, RetrievalModel, item_features
from linr_tf.ops.topk_ops import masked_top_k
from linr_tf.ranking.rank import retrieve_and_rank
from linr_tf.ranking.ranker import Ranker
from linr_tf.towers import Tower

RATING = "rating"
RANK_DENSE = "rank_dense"
RANK_IDS = "rank_ids"
PAIR = "\x1f"   # joins a query id and an item id into one key


def rank_columns(ranking, columns: Mapping[str, np.ndarray]):
  """(rank_dense float32 [N, F], rank_ids int64 [N, C]) of catalogue columns."""
  n = len(next(iter(columns.values())))
  missing = [c for c in list(ranking.dense_features) + ranking.id_names if c not in columns]
  if missing:
    raise ValueError(f"ranking feature column(s) {missing} missing from the catalogue")
  dense = np.stack([np.asarray(columns[c], np.float32) for c in ranking.dense_features], 1) \
      if ranking.dense_features else np.zeros([n, 0], np.float32)
  ids = np.stack([np.asarray(columns[c]).astype(np.int64) for c in ranking.id_names], 1) \
      if ranking.id_names else np.zeros([n, 0], np.int64)
  if not np.isfinite(dense).all():
    raise ValueError("ranking dense features hold NaN or Inf")
  sizes = np.asarray(ranking.vocab_sizes, np.int64)
  if ids.size and ((ids < 0) | (ids >= sizes)).any():
    bad = int(np.argwhere((ids < 0) | (ids >= sizes))[0][1])
    raise ValueError(f"ranking id feature '{ranking.id_names[bad]}' out of range "
                     f"[0, {sizes[bad]})")
  return dense, ids


class RankingHead(tf.keras.layers.Layer):
  """The ranker's own query tower + the `Ranker` (what the SavedModel adds)."""

  def __init__(self, cfg: config_lib.Config, vocabularies, **kwargs):
    super().__init__(**kwargs)
    r = cfg.ranking
    self.query_tower = Tower(cfg.query_features, vocabularies, cfg.embedding_dim,
                             cfg.hidden_units, cfg.separator, name="rank_query_tower")
    self.ranker = Ranker(r.vocab_sizes, r.id_embedding_dim, r.cross_layers,
                         r.projection_dim, r.hidden_units, name="ranker")

  def call(self, features):
    """The ranker's query input [B, d] of raw query features."""
    return self.query_tower(features)


class JointModel(RetrievalModel):
  """`RetrievalModel` + `RankingHead`, one loss per stage, three modes."""

  def __init__(self, cfg: config_lib.Config, vocabularies, bit_keys: Sequence[str],
               columns=None):
    if cfg.ranking is None:
      raise ValueError("JointModel needs a config with a `ranking` section")
    super().__init__(cfg, vocabularies, bit_keys, columns)
    self.ranking = RankingHead(cfg, vocabularies, name="ranking")
    self.mode = cfg.ranking.mode
    self._catalog = None
    self._engaged = None

  # --- data ------------------------------------------------------------------

  def set_catalog(self, catalog: Catalog, engaged=None) -> None:
    """The catalogue retrieved in-model by "cascade" training (constants).

    `engaged`: optional (query ids, item ids) of the training engagements; a
    retrieved item the query engaged with anywhere in training is no hard
    negative (the generalisation of removing accidental hits; without it only
    the example's own item is masked)."""
    feats = item_features(self.cfg, catalog.columns)
    dense, ids = rank_columns(self.cfg.ranking, catalog.columns)
    self._catalog = ({k: tf.constant(v) for k, v in feats.items()},
                     tf.constant(dense), tf.constant(ids),
                     tf.constant(np.asarray(catalog.ids).astype(str)))
    self._engaged = None
    if engaged is not None:
      keys = np.unique(np.char.add(np.char.add(np.asarray(engaged[0]).astype(str), PAIR),
                                   np.asarray(engaged[1]).astype(str)))
      self._engaged = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.ones(len(keys), tf.int64)),
          default_value=0)

  def build_index(self, catalog: Catalog) -> None:
    """Vectors and filters (`RetrievalModel.build_index`) plus the ranking stores."""
    super().build_index(catalog)
    dense, ids = rank_columns(self.cfg.ranking, catalog.columns)
    if self.index.rank_dense is not None:
      self.index.rank_dense.assign(dense)
    if self.index.rank_ids is not None:
      self.index.rank_ids.assign(ids)

  # --- losses ----------------------------------------------------------------

  def losses_of(self, features, training=False):
    """{"retrieval": loss, "ranking": loss} of one batch."""
    q = self.query_tower(features)
    c = self.item_tower(features)
    retrieval = self.task(q, c, candidate_sampling_probability=features[SAMPLING_PROBABILITY],
                          candidate_ids=features[self.cfg.item_id_feature],
                          compute_metrics=not training)
    return {"retrieval": retrieval, "ranking": self.ranking_loss(features, q, c)}

  def compute_loss(self, features, training=False):
    losses = self.losses_of(features, training)
    return losses["retrieval"] + self.cfg.ranking.rank_weight * losses["ranking"]

  def ranking_loss(self, features, q, c):
    r = self.cfg.ranking
    if self.mode == "separate":
      q, c = tf.stop_gradient(q), tf.stop_gradient(c)
    rq = self.ranking(features)
    dense = tf.cast(features[RANK_DENSE], tf.float32)
    ids = tf.cast(features[RANK_IDS], tf.int64)
    item_ids = features[self.cfg.item_id_feature]
    rating = tf.cast(features[RATING], tf.float32)
    label = tf.cast(rating >= r.positive_rating, tf.float32)
    ranker = self.ranking.ranker
    logit, predicted = ranker(rq, c, dense, ids, tf.reduce_sum(q * c, -1))
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    # Engagement = a rating >= positive_rating; an example rated lower is
    # neither positive nor negative here (it only teaches the rating head).
    positive = _weighted_mean(bce(label, logit), label)
    rating_loss = tf.reduce_mean(tf.square(predicted - rating))
    if r.negatives == "uniform":
      neg_c, neg_dense, neg_ids, neg_item_ids = self._uniform_negatives(tf.shape(q)[0])
      if self.mode == "separate":
        neg_c = tf.stop_gradient(neg_c)
    else:  # One in-batch negative per example: the next example's item.
      roll = lambda t: tf.roll(t, 1, axis=0)  # noqa: E731
      neg_c, neg_dense, neg_ids, neg_item_ids = roll(c), roll(dense), roll(ids), roll(item_ids)
    neg_logit, _ = ranker(rq, neg_c, neg_dense, neg_ids, tf.reduce_sum(q * neg_c, -1))
    weight = tf.cast(tf.not_equal(neg_item_ids, item_ids), tf.float32)
    negative = _weighted_mean(bce(tf.zeros_like(neg_logit), neg_logit), weight)
    if self.mode == "cascade":
      negative += self._hard_negative_loss(features, q, rq, item_ids)
    # Summed over the batch, as TFRS sums the retrieval loss.
    batch = tf.cast(tf.shape(logit)[0], tf.float32)
    return batch * (positive + negative + r.rating_weight * rating_loss)

  def _uniform_negatives(self, batch):
    """One catalogue item per example, uniformly at random (needs set_catalog)."""
    if self._catalog is None:
      raise ValueError("ranking.negatives 'uniform' needs the catalogue: call set_catalog(catalog)")
    feats, dense, ids, catalog_ids = self._catalog
    pick = tf.random.uniform([batch], 0, tf.shape(catalog_ids)[0], tf.int32)
    items = self.item_tower({k: tf.gather(v, pick) for k, v in feats.items()})
    return items, tf.gather(dense, pick), tf.gather(ids, pick), tf.gather(catalog_ids, pick)

  def _hard_negative_loss(self, features, q, rq, item_ids):
    """Cross-entropy on the items retrieval returns (top-k op, in-model)."""
    if self._catalog is None:
      raise ValueError("cascade training needs the catalogue: call set_catalog(catalog)")
    feats, dense, ids, catalog_ids = self._catalog
    items = self.item_tower(feats)                               # [N, d]
    found = masked_top_k(q, items, all_pass_mask(tf.shape(q)[0], tf.shape(items)[0]),
                         self.cfg.ranking.hard_negatives)
    valid = found.indices >= 0
    slots = tf.where(valid, found.indices, 0)
    b, h = tf.shape(slots)[0], tf.shape(slots)[1]
    flat = tf.reshape(slots, [-1])
    rows = tf.repeat(tf.range(b), h)
    logit, _ = self.ranking.ranker(tf.gather(rq, rows), tf.gather(items, flat),
                                   tf.gather(dense, flat), tf.gather(ids, flat),
                                   tf.reshape(tf.where(valid, found.scores, 0.0), [-1]))
    retrieved = tf.gather(catalog_ids, slots)
    hit = tf.equal(retrieved, item_ids[:, None])                     # accidental hits
    if self._engaged is not None:
      query = features[self.cfg.query_id_feature][:, None]
      hit |= self._engaged.lookup(query + PAIR + retrieved) > 0
    weight = tf.reshape(tf.cast(valid & ~hit, tf.float32), [-1])
    return _weighted_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        tf.zeros_like(logit), logit), weight)

  # --- serving ---------------------------------------------------------------

  def retrieve_and_rank(self, features, filters=None, k_retrieve=100, k_final=10):
    """Two-stage search over the built index (see `rank.retrieve_and_rank`)."""
    features = {k_: tf.convert_to_tensor(v) for k_, v in features.items()}
    q = self.query_tower(features)
    if filters is not None:
      filters = tf.convert_to_tensor(filters, tf.string)
    return retrieve_and_rank(self.index, self.ranking.ranker, self.ranking(features), q,
                             filters, k_retrieve, k_final)


def all_pass_mask(batch, num_items):
  """int32 [batch, ceil(N / 32)] with the bits of all N items set."""
  words = (num_items + 31) // 32
  bit = tf.range(words * 32) < num_items
  packed = tf.reduce_sum(tf.reshape(tf.cast(bit, tf.int64), [words, 32])
                         * tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.range(32, dtype=tf.int64)),
                         axis=1)
  row = tf.bitcast(tf.cast(packed, tf.uint32), tf.int32)
  return tf.tile(row[None, :], tf.stack([batch, 1]))


def _weighted_mean(values, weight):
  return tf.reduce_sum(values * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)


def make_datasets(cfg: config_lib.Config, catalog: Catalog, interactions, ratings,
                  rows_train: Optional[np.ndarray] = None):
  """tf.data of (query + item features, rating, stored rank features) per
  interaction row in `rows_train` (all rows when None), batched and shuffled."""
  from linr_tf.model import query_features  # pylint: disable=g-import-not-at-top
  rows = np.arange(len(interactions)) if rows_train is None else np.asarray(rows_train)
  pos = interactions.item_pos[rows]
  counts = np.bincount(pos, minlength=len(catalog)).astype(np.float64)
  probability = np.maximum(counts, 0.5) / max(len(rows), 1)
  dense, ids = rank_columns(cfg.ranking, catalog.columns)
  feats = query_features(cfg, {k: v[rows] for k, v in interactions.columns.items()})
  feats.update(item_features(cfg, catalog.rows(pos)))
  feats[SAMPLING_PROBABILITY] = probability[pos].astype(np.float32)
  feats[RATING] = np.asarray(ratings, np.float32)[rows]
  feats[RANK_DENSE] = dense[pos]
  feats[RANK_IDS] = ids[pos]
  ds = tf.data.Dataset.from_tensor_slices(feats).shuffle(len(rows), seed=cfg.train.seed,
                                                          reshuffle_each_iteration=True)
  return ds.batch(cfg.train.batch_size).prefetch(tf.data.AUTOTUNE)
