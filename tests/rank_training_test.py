"""Joint training (issue 16): gradients through the top-k op into query and
item embeddings, one joint step lowers both losses, the modes differ only in
where the ranking loss reaches."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from linr_tf.ops.topk_ops import masked_top_k
from linr_tf.ranking.model import all_pass_mask, make_datasets
from linr_tf.ranking.ranker import Ranker
from rank_fixtures import make_config, make_data, make_model


def test_gradient_through_top_k_matches_stock_top_k():
  rng = np.random.default_rng(0)
  b, n, d, k = 5, 70, 6, 7
  q = tf.Variable(rng.normal(size=(b, d)).astype(np.float32))
  items = tf.Variable(rng.normal(size=(n, d)).astype(np.float32))
  dense = tf.constant(rng.normal(size=(n, 2)).astype(np.float32))
  ids = tf.constant(rng.integers(0, 4, (n, 1)))
  rq = tf.constant(rng.normal(size=(b, d)).astype(np.float32))
  weight = tf.constant(rng.normal(size=(b * k,)).astype(np.float32))
  ranker = Ranker([4], hidden_units=[8])

  def loss(indices, scores):
    flat = tf.reshape(indices, [-1])
    logit, rating = ranker(tf.repeat(rq, k, 0), tf.gather(items, flat), tf.gather(dense, flat),
                           tf.gather(ids, flat), tf.reshape(scores, [-1]))
    return tf.reduce_sum(weight * logit) + tf.reduce_sum(rating)

  with tf.GradientTape() as tape:
    found = masked_top_k(q, items, all_pass_mask(b, n), k)
    ours = loss(found.indices, found.scores)
  g_ours = tape.gradient(ours, [q, items])
  with tf.GradientTape() as tape:   # stock: full matmul, tf.math.top_k, gathered dot products
    top = tf.math.top_k(tf.matmul(q, items, transpose_b=True), k)
    scores = tf.reduce_sum(q[:, None, :] * tf.gather(items, top.indices), -1)
    ref = loss(top.indices, scores)
  g_ref = tape.gradient(ref, [q, items])
  np.testing.assert_array_equal(found.indices.numpy(), top.indices.numpy())
  np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5)
  for a, r in zip(g_ours, g_ref):
    a = tf.convert_to_tensor(a).numpy()
    r = tf.convert_to_tensor(r).numpy()
    np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)
    assert np.abs(a).max() > 1e-3
  # Only the returned items get a gradient from the scores (and the gathers).
  untouched = np.setdiff1d(np.arange(n), top.indices.numpy().ravel())
  assert np.abs(tf.convert_to_tensor(g_ours[1]).numpy()[untouched]).max() == 0


@pytest.fixture(scope="module")
def data():
  return make_data(num_items=60, num_users=20)


def first_batch(cfg, data):
  catalog, interactions, ratings = data
  return next(iter(make_datasets(cfg, catalog, interactions, ratings)))


def tower_grads(model, batch):
  """Gradients of the ranking loss alone w.r.t. the two retrieval towers."""
  towers = model.query_tower.trainable_variables + model.item_tower.trainable_variables
  with tf.GradientTape() as tape:
    q = model.query_tower(batch)
    c = model.item_tower(batch)
    loss = model.ranking_loss(batch, q, c)
  return [g for g in tape.gradient(loss, towers)]


@pytest.mark.parametrize("mode", ["joint", "cascade"])
def test_one_joint_step_lowers_both_losses(mode, data):
  catalog, interactions, _ = data
  tf.keras.utils.set_random_seed(0)
  cfg = make_config(mode, batch_size=128)
  model = make_model(cfg, catalog, interactions)
  model.set_catalog(catalog)
  # A small step (the retrieval gradient through the shared towers dominates;
  # at 0.1 a cascade step could raise the ranking loss). Held for 8 of 8 seeds.
  model.compile(optimizer=tf.keras.optimizers.Adagrad(0.02))
  batch = first_batch(cfg, data)
  before = {k: float(v) for k, v in model.losses_of(batch, training=True).items()}
  model.train_step(batch)
  after = {k: float(v) for k, v in model.losses_of(batch, training=True).items()}
  assert after["retrieval"] < before["retrieval"], (before, after)
  assert after["ranking"] < before["ranking"], (before, after)
  # The ranking loss reaches the retrieval towers (shared).
  grads = tower_grads(model, batch)
  assert any(g is not None and np.abs(tf.convert_to_tensor(g).numpy()).max() > 0 for g in grads)


@pytest.mark.parametrize("negatives", ["in_batch", "uniform"])
def test_separate_mode_keeps_ranking_loss_off_the_towers(negatives, data):
  catalog, interactions, _ = data
  cfg = make_config("separate")
  cfg = dataclasses.replace(cfg, ranking=dataclasses.replace(cfg.ranking, negatives=negatives))
  model = make_model(cfg, catalog, interactions)
  model.set_catalog(catalog)
  batch = first_batch(cfg, data)
  assert all(g is None for g in tower_grads(model, batch))


def test_uniform_negatives_need_the_catalogue(data):
  catalog, interactions, _ = data
  cfg = make_config("joint")
  cfg = dataclasses.replace(cfg, ranking=dataclasses.replace(cfg.ranking, negatives="uniform"))
  model = make_model(cfg, catalog, interactions)
  batch = first_batch(cfg, data)
  with pytest.raises(ValueError, match="set_catalog"):
    model.losses_of(batch, training=True)
  model.set_catalog(catalog)
  assert float(model.losses_of(batch, training=True)["ranking"]) > 0


def test_cascade_hard_negatives_reach_both_towers_through_top_k(data):
  """The hard-negative term alone: its only path to the item tower's catalogue
  embeddings and to the query tower goes through the top-k op and the gathers."""
  catalog, interactions, _ = data
  cfg = make_config("cascade", hard_negatives=8)
  model = make_model(cfg, catalog, interactions)
  model.set_catalog(catalog)
  batch = first_batch(cfg, data)
  with tf.GradientTape() as tape:
    q = model.query_tower(batch)
    rq = model.ranking(batch)
    loss = model._hard_negative_loss(batch, q, rq, batch["item_id"])  # pylint: disable=protected-access
  qv = model.query_tower.trainable_variables
  iv = model.item_tower.trainable_variables
  grads = tape.gradient(loss, qv + iv)
  nonzero = [g is not None and np.abs(tf.convert_to_tensor(g).numpy()).max() > 0 for g in grads]
  assert any(nonzero[:len(qv)]) and any(nonzero[len(qv):])
  # Items the query engaged with anywhere in training are no hard negatives:
  # with every (user, item) pair marked engaged, nothing is left to learn from.
  every = np.array([(u, i) for u in batch["user_id"].numpy().astype(str)
                    for i in catalog.ids], object)
  model.set_catalog(catalog, (every[:, 0], every[:, 1]))
  masked = model._hard_negative_loss(batch, q, rq, batch["item_id"])  # pylint: disable=protected-access
  assert float(loss) > 0 and float(masked) == 0
  with pytest.raises(ValueError, match="set_catalog"):
    make_model(cfg, catalog, interactions)._hard_negative_loss(batch, q, rq, batch["item_id"])  # pylint: disable=protected-access


@pytest.mark.parametrize("mode,negatives", [("separate", "in_batch"), ("joint", "uniform"),
                                            ("cascade", "in_batch")])
def test_fit_trains_each_mode(mode, negatives, data):
  catalog, interactions, ratings = data
  tf.keras.utils.set_random_seed(1)
  cfg = make_config(mode)
  cfg = dataclasses.replace(cfg, ranking=dataclasses.replace(cfg.ranking, negatives=negatives))
  model = make_model(cfg, catalog, interactions)
  model.set_catalog(catalog)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
  history = model.fit(make_datasets(cfg, catalog, interactions, ratings), epochs=4, verbose=0)
  losses = history.history["loss"]
  assert losses[-1] < losses[0], losses
  model.build_index(catalog)
  out = model.retrieve_and_rank({"user_id": ["u0", "u1"]}, None, 20, 5)
  assert out.count.numpy().tolist() == [5, 5]
