"""Training with model.fit: loss falls, FactorizedTopK recall through the index."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import model as model_lib


def test_fit_loss_falls_and_recall_beats_chance(feed):
  cfg, catalog, log, _ = feed
  tf.keras.utils.set_random_seed(1)
  model = model_lib.RetrievalModel.from_data(cfg, catalog, log)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(cfg.train.learning_rate))
  train_ds, test_ds = model_lib.make_datasets(cfg, catalog, log)
  history = model.fit(train_ds, validation_data=test_ds, epochs=3, verbose=0,
                      callbacks=[model_lib.RefreshIndex(model, catalog)])
  losses = history.history["loss"]
  assert losses[-1] < losses[0] * 0.95, losses
  recall = history.history["val_factorized_top_k/top_100_categorical_accuracy"]
  # 100 of 800 items at random is 0.125; planted structure should beat that.
  assert recall[-1] > 0.2, recall
  # The callback rebuilt the index from the final towers before evaluation.
  np.testing.assert_allclose(model.index.vectors.numpy(),
                             model.embed_items(catalog), atol=1e-6)


def test_recall_metric_agrees_with_numpy(trained, feed):
  model, catalog, cfg = trained
  _, _, log, _ = feed
  _, test_ds = model_lib.make_datasets(cfg, catalog, log)
  metrics = model.evaluate(test_ds, return_dict=True, verbose=0)
  # Independent check: brute-force top-100 with numpy over all items.
  _, test_rows = model_lib.split_by_time(log, cfg.train.holdout_fraction)
  q = model.query_tower({"user_id": tf.constant(
      log.columns["user_id"][test_rows])}).numpy().astype(np.float64)
  items = model.embed_items(catalog).astype(np.float64)
  scores = q @ items.T
  true = log.item_pos[test_rows]
  rank = (scores > scores[np.arange(len(true)), true][:, None]).sum(axis=1)
  expected = float(np.mean(rank < 100))
  got = metrics["factorized_top_k/top_100_categorical_accuracy"]
  assert got == pytest.approx(expected, abs=0.01)


def test_retrieve_rejects_unknown_feature(trained):
  model, _, _ = trained
  with pytest.raises(ValueError, match=r"unknown query feature\(s\) \['usr'\]"):
    model.retrieve({"usr": ["u1"]})
  with pytest.raises(ValueError, match=r"missing input feature\(s\) \['user_id'\]"):
    model.retrieve({})


def test_unseen_user_gets_results(trained):
  model, _, _ = trained
  _, ids, count = model.retrieve({"user_id": ["never-seen"]}, None, 5)
  assert int(count[0]) == 5 and all(ids[0].numpy())
