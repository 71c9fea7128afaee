"""MixtureOfLogits against a numpy reference (scores through its gate MLP,
gradients by central differences), P = Q = 1 equivalence with the dot
product (scores and the TFRS retrieval loss), and training with model.fit."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops"))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from linr_tf.mol import MixtureOfLogits  # noqa: E402
from mol_reference import mol_scores_np  # noqa: E402


def unit(rng, *shape):
  x = rng.normal(size=shape)
  return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def gate_bias_np(layer, queries):
  """The layer's gate MLP in numpy (relu hidden layers, linear output)."""
  x = np.asarray(queries, np.float64).reshape(len(queries), -1)
  for i, dense in enumerate(layer.gate_mlp):
    w, b = [v.numpy().astype(np.float64) for v in dense.weights]
    x = x @ w + b
    if i < len(layer.gate_mlp) - 1:
      x = np.maximum(x, 0)
  return x


def randomise(layer, rng):
  for v in layer.trainable_variables:
    v.assign(0.3 * rng.normal(size=v.shape).astype(np.float32))


@pytest.mark.parametrize("gate", ["softmax", "linear"])
@pytest.mark.parametrize("p,q", [(1, 1), (2, 3), (4, 4)])
def test_scores_match_numpy(gate, p, q):
  rng = np.random.default_rng(p * 7 + q)
  layer = MixtureOfLogits(p, q, gate_units=(16, 8), gate=gate)
  queries, items = unit(rng, 6, p, 12), unit(rng, 40, q, 12)
  layer(queries, items)
  randomise(layer, rng)
  got = layer(queries, items).numpy()
  bias = gate_bias_np(layer, queries)
  want = mol_scores_np(queries, items, bias, layer.weight.numpy(), softmax=gate == "softmax")
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  # Candidates per query give the same scores as the matrix.
  cand = np.stack([items[[3, 7, 39]]] * 6)
  np.testing.assert_allclose(layer.score_candidates(queries, cand).numpy(), got[:, [3, 7, 39]],
                             rtol=1e-6, atol=1e-6)


def test_constant_gate_is_uniform_mean_of_dots():
  rng = np.random.default_rng(1)
  layer = MixtureOfLogits(2, 3, gate="constant")
  queries, items = unit(rng, 4, 2, 8), unit(rng, 10, 3, 8)
  want = np.einsum("bpd,nqd->bnpq", queries, items).mean(axis=(2, 3))
  np.testing.assert_allclose(layer(queries, items).numpy(), want, rtol=1e-6, atol=1e-6)
  assert layer.trainable_variables == []


@pytest.mark.parametrize("gate", ["constant", "softmax"])
def test_p_q_one_reduces_to_dot_product(gate):
  rng = np.random.default_rng(2)
  layer = MixtureOfLogits(1, 1, gate=gate)
  queries, items = unit(rng, 16, 1, 32), unit(rng, 16, 1, 32)
  layer(queries, items)
  randomise(layer, rng)  # a softmax over one logit is 1 whatever the MLP says
  dot = tf.matmul(queries[:, 0], items[:, 0], transpose_b=True).numpy()
  np.testing.assert_allclose(layer(queries, items).numpy(), dot, rtol=0, atol=2e-7)
  # The TFRS retrieval loss over MoL scores (identity "candidates") is the
  # loss over the plain embeddings.
  task = tfrs.tasks.Retrieval(temperature=0.2, remove_accidental_hits=True)
  ids = tf.constant([str(i % 5) for i in range(16)])
  prob = tf.constant(rng.uniform(0.01, 0.2, 16).astype(np.float32))
  mol_loss = task(layer(queries, items), tf.eye(16), candidate_sampling_probability=prob,
                  candidate_ids=ids)
  dot_loss = task(queries[:, 0], items[:, 0], candidate_sampling_probability=prob,
                  candidate_ids=ids)
  np.testing.assert_allclose(mol_loss.numpy(), dot_loss.numpy(), rtol=1e-6)


def test_gradients_match_central_differences():
  rng = np.random.default_rng(3)
  p, q, d = 2, 2, 5
  layer = MixtureOfLogits(p, q, gate_units=(6,))
  queries, items = unit(rng, 3, p, d), unit(rng, 4, q, d)
  layer(queries, items)
  randomise(layer, rng)
  upstream = rng.normal(size=(3, 4))
  q_v, e_v = tf.Variable(queries), tf.Variable(items)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(layer(q_v, e_v) * upstream)
  g_q, g_e, g_w = tape.gradient(loss, [q_v, e_v, layer.weight])
  weight = layer.weight.numpy().astype(np.float64)

  def f(qq, ee, ww):
    return float((mol_scores_np(qq, ee, gate_bias_np(layer, qq), ww) * upstream).sum())

  eps = 1e-4
  for arr, grad, which in ((queries.astype(np.float64), g_q, 0),
                           (items.astype(np.float64), g_e, 1), (weight, g_w, 2)):
    num = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
      plus, minus = arr.copy(), arr.copy()
      plus[idx] += eps
      minus[idx] -= eps
      args_p = [queries.astype(np.float64), items.astype(np.float64), weight]
      args_m = list(args_p)
      args_p[which], args_m[which] = plus, minus
      num[idx] = (f(*args_p) - f(*args_m)) / (2 * eps)
    np.testing.assert_allclose(grad.numpy(), num, rtol=2e-3, atol=2e-4)


def test_bad_shapes_are_named():
  layer = MixtureOfLogits(2, 2)
  with pytest.raises(ValueError, match="expected 2 query embeddings, got 3"):
    layer(np.zeros((1, 3, 4), np.float32), np.zeros((5, 2, 4), np.float32))
  with pytest.raises(ValueError, match="item embeddings must be"):
    layer(np.zeros((1, 2, 4), np.float32), np.zeros((5, 8), np.float32))
  with pytest.raises(ValueError, match="gate must be"):
    MixtureOfLogits(1, 1, gate="max")
  with pytest.raises(ValueError, match="num_query and num_item"):
    MixtureOfLogits(9, 1)


def test_config_section_round_trip_and_errors():
  import json
  from linr_tf import config as config_lib
  cfg = config_lib.load(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     "configs", "mol_movielens.json"))
  assert cfg.mol.query_embeddings == 4 and cfg.mol.clusters == 100
  assert config_lib.from_dict(json.loads(cfg.to_json())) == cfg
  base = json.loads(cfg.to_json())
  assert config_lib.from_dict({**base, "mol": None}).mol is None       # off by default
  for bad, message in (({"P": 2}, "mol: unknown keys"), ({"query_embeddings": 9}, "in \\[1, 8\\]"),
                       ({"gate": "max"}, "mol.gate must be"),
                       ({"cluster_mode": "learned"}, "mol.cluster_mode"),
                       ({"item_embeddings": 8, "clusters": 10}, "cluster component")):
    with pytest.raises(ValueError, match=message):
      config_lib.from_dict({**base, "mol": {**base["mol"], **bad} if "P" not in bad else bad})
