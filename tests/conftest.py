"""Shared fixtures: a small synthetic feed and a model trained on it (once per file)."""

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402  (sets TF_USE_LEGACY_KERAS first)
import pytest  # noqa: E402

from linr_tf import config as config_lib  # noqa: E402
from linr_tf import data as data_lib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CONFIG = os.path.join(REPO, "configs", "demo.json")


def small_config(**train_overrides):
  cfg = config_lib.load(DEMO_CONFIG)
  train = dataclasses.replace(cfg.train, epochs=1, batch_size=256,
                              **train_overrides)
  return dataclasses.replace(cfg, embedding_dim=32, hidden_units=[64],
                             train=train)


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("feed"))
  data_lib.generate_feed(d, num_users=300, num_items=800,
                         interactions_per_user=20, seed=3)
  cfg = small_config()
  catalog = data_lib.read_items(os.path.join(d, "items.csv"), cfg)
  log = data_lib.read_interactions(os.path.join(d, "interactions.csv"), cfg,
                                   catalog)
  return cfg, catalog, log, d


@pytest.fixture(scope="module")
def trained(feed):
  """(model, catalog, cfg) after one short epoch, index built."""
  cfg, catalog, log, _ = feed
  return train_small(cfg, catalog, log)


def train_small(cfg, catalog, log):
  """(model, catalog, cfg): one short epoch of `cfg` on the feed, index built."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from linr_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(0)
  model = model_lib.RetrievalModel.from_data(cfg, catalog, log)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(cfg.train.learning_rate))
  train_ds, _ = model_lib.make_datasets(cfg, catalog, log)
  model.fit(train_ds, epochs=1, verbose=0)
  model.build_index(catalog)
  return model, catalog, cfg


def run_search(fn, users, filters, k, **kw):
  """Calls a search signature `fn` with user ids, filter strings and k; numpy outputs."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = fn(user_id=tf.constant(users), filter=tf.constant(filters),
           k=tf.constant(k, tf.int32), **kw)
  return {n: v.numpy() for n, v in out.items()}
