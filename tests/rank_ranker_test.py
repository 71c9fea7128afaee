"""The DCN-v2 ranker and the ranking config (issue 16) against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import config as config_lib
from linr_tf.ranking.config import RankingConfig, from_dict
from linr_tf.ranking.model import all_pass_mask, rank_columns
from linr_tf.ranking.ranker import Ranker
from rank_fixtures import numpy_ranker
from conftest import DEMO_CONFIG


@pytest.mark.parametrize("projection_dim,dq", [(0, 6), (3, 6), (0, 4)])
def test_ranker_matches_numpy(projection_dim, dq):
  rng = np.random.default_rng(projection_dim + dq)
  m, d = 13, 6
  ranker = Ranker(vocab_sizes=[5, 3], id_embedding_dim=4, cross_layers=2,
                  projection_dim=projection_dim, hidden_units=[8, 4])
  query = rng.normal(size=(m, dq)).astype(np.float32)
  item = rng.normal(size=(m, d)).astype(np.float32)
  dense = rng.normal(size=(m, 2)).astype(np.float32)
  ids = np.stack([rng.integers(0, 5, m), rng.integers(0, 3, m)], 1)
  score = rng.normal(size=m).astype(np.float32)
  logit, rating = ranker(query, item, dense, ids, score)
  # Non-trivial weights: perturb every variable so biases are not all zero.
  for v in ranker.trainable_variables:
    v.assign(v + rng.normal(scale=0.1, size=v.shape).astype(np.float32))
  logit, rating = ranker(query, item, dense, ids, score)
  ref_logit, ref_rating = numpy_ranker(ranker, query, item, dense, ids, score)
  np.testing.assert_allclose(logit.numpy(), ref_logit, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(rating.numpy(), ref_rating, rtol=1e-4, atol=1e-5)
  # Rows are independent: one candidate ranked alone gets the same logit.
  one, _ = ranker(query[3:4], item[3:4], dense[3:4], ids[3:4], score[3:4])
  np.testing.assert_allclose(one.numpy(), logit.numpy()[3:4], rtol=1e-5, atol=1e-6)
  # The retrieval score is an input: changing it changes the logit.
  moved, _ = ranker(query, item, dense, ids, score + 1.0)
  assert np.abs(moved.numpy() - logit.numpy()).max() > 1e-4


def test_ranker_rejects_wrong_number_of_id_features():
  ranker = Ranker(vocab_sizes=[5, 3])
  with pytest.raises(ValueError, match="2 vocabularies"):
    ranker(np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32),
           np.zeros((2, 0), np.float32), np.zeros((2, 1), np.int64), np.zeros(2, np.float32))


def test_config_section_round_trip_and_errors():
  cfg = config_lib.load(DEMO_CONFIG)
  assert cfg.ranking is None
  raw = {"dense_features": ["age_hours"], "id_features": {"type_id": 4}, "mode": "cascade"}
  import dataclasses, json  # pylint: disable=g-import-not-at-top,multiple-imports
  d = json.loads(cfg.to_json())
  d["ranking"] = raw
  parsed = config_lib.from_dict(d)
  assert parsed.ranking == RankingConfig(**raw)
  assert config_lib.from_dict(json.loads(parsed.to_json())) == parsed
  with pytest.raises(ValueError, match="ranking.mode"):
    from_dict({"mode": "both"})
  with pytest.raises(ValueError, match="unknown keys"):
    from_dict({"dense": ["x"]})
  with pytest.raises(ValueError, match="ranking.negatives"):
    from_dict({"negatives": "hard"})
  with pytest.raises(ValueError, match="vocabulary size"):
    from_dict({"id_features": {"g": 0}})
  assert dataclasses.replace(parsed.ranking, mode="joint").mode == "joint"


def test_rank_columns_checks_ranges():
  r = RankingConfig(dense_features=["a"], id_features={"g": 3})
  dense, ids = rank_columns(r, {"a": np.array([1.0, 2.0]), "g": np.array([0, 2])})
  assert dense.shape == (2, 1) and ids.tolist() == [[0], [2]]
  with pytest.raises(ValueError, match="'g' out of range"):
    rank_columns(r, {"a": np.array([1.0]), "g": np.array([3])})
  with pytest.raises(ValueError, match="missing"):
    rank_columns(r, {"a": np.array([1.0])})
  with pytest.raises(ValueError, match="NaN"):
    rank_columns(r, {"a": np.array([np.nan]), "g": np.array([0])})


@pytest.mark.parametrize("n", [1, 31, 32, 33, 70])
def test_all_pass_mask(n):
  mask = all_pass_mask(tf.constant(2), tf.constant(n)).numpy()
  bits = np.unpackbits(mask.view(np.uint8), bitorder="little").reshape(2, -1)
  assert bits.shape[1] == 32 * ((n + 31) // 32)
  assert (bits[:, :n] == 1).all() and (bits[:, n:] == 0).all()
