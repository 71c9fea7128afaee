"""MoL end to end on a small synthetic catalogue: model.fit with the TFRS
task, k-means clusters (fixed vs trainable), cold start through
`MoLIndex.upsert_items` (nearest cluster in-graph), MoLSearch (exhaustive and
two-stage, custom ops and stock ops) against numpy brute force under filters."""

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops"))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import config as config_lib  # noqa: E402
from linr_tf import attributes as attributes_lib  # noqa: E402
from linr_tf.attributes import AttributeSchema  # noqa: E402
from linr_tf.mol import MoLIndex, MoLRetrievalModel, kmeans  # noqa: E402
from linr_tf.mol.export import export_mol  # noqa: E402
from linr_tf.mol.model import SAMPLING_PROBABILITY  # noqa: E402
from linr_tf.search import StockKernels  # noqa: E402
from mol_reference import mol_scores_np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENRES = ["Drama", "Comedy", "Action", "Horror"]


def synthetic(num_users=60, num_items=120, num_rows=3000, seed=0):
  rng = np.random.default_rng(seed)
  genre = np.array(["|".join(sorted(set(rng.choice(GENRES, rng.integers(1, 3)))))
                    for _ in range(num_items)])
  year = rng.choice(["1990", "1995", "2000"], num_items)
  items = {"item_id": np.array([f"m{i}" for i in range(num_items)]), "genre": genre,
           "year": year}
  taste = rng.integers(0, len(GENRES), num_users)
  users, pos = [], []
  for _ in range(num_rows):
    u = rng.integers(num_users)
    liked = [i for i in range(num_items) if GENRES[taste[u]] in genre[i]]
    users.append(f"u{u}")
    pos.append(rng.choice(liked) if rng.random() < 0.8 else rng.integers(num_items))
  return items, np.array(users), np.array(pos)


def make_config(**mol):
  cfg = config_lib.load(os.path.join(REPO, "configs", "mol_movielens.json"))
  train = dataclasses.replace(cfg.train, batch_size=128)
  return dataclasses.replace(cfg, embedding_dim=8, hidden_units=[16], train=train,
                             mol=dataclasses.replace(cfg.mol, kmeans_iterations=10, **mol))


def dataset(items, users, pos):
  counts = np.bincount(pos, minlength=len(items["item_id"]))
  feats = {"user_id": users, **{k: v[pos] for k, v in items.items()},
           SAMPLING_PROBABILITY: (counts[pos] / len(pos)).astype(np.float32)}
  return tf.data.Dataset.from_tensor_slices(feats).shuffle(len(pos), seed=0).batch(128)


def vocab(items, users, known):
  return {"user_id": sorted(set(users)), "item_id": sorted(items["item_id"][known]),
          "genre": GENRES, "year": ["1990", "1995", "2000"]}


@pytest.fixture(scope="module")
def data():
  return synthetic()


def test_kmeans_recovers_separated_clusters():
  rng = np.random.default_rng(0)
  centers = np.eye(6)[:4] * 5
  x = np.concatenate([c + 0.1 * rng.normal(size=(50, 6)) for c in centers])
  cent, assign = kmeans(x, 4, seed=1)
  truth = np.repeat(np.arange(4), 50)
  for j in range(4):  # every true cluster maps to one k-means cluster
    assert len(set(assign[truth == j])) == 1
  assert len(set(assign)) == 4
  unit = x / np.linalg.norm(x, axis=1, keepdims=True)
  np.testing.assert_array_equal(assign, (unit @ cent.T).argmax(1))
  with pytest.raises(ValueError, match="num_clusters must be in"):
    kmeans(x, 0)


@pytest.mark.parametrize("mode", ["fixed", "trainable"])
def test_fit_clusters_and_cold_start(data, mode, tmp_path_factory):
  items, users, pos = data
  n = len(items["item_id"])
  cold = np.arange(n) >= n - 12                       # never seen in training
  keep = ~cold[pos]
  cfg = make_config(query_embeddings=2, item_embeddings=2, clusters=6, cluster_mode=mode)
  tf.keras.utils.set_random_seed(0)
  model = MoLRetrievalModel(cfg, vocab(items, users, ~cold))
  model.compile(optimizer=tf.keras.optimizers.Adagrad(0.2))
  ds = dataset(items, users[keep], pos[keep])
  before_fit = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
  model.fit(ds, epochs=2, verbose=0)
  assert model.evaluate(ds, verbose=0, return_dict=True)["loss"] < before_fit
  warm_feats = {k: v[~cold] for k, v in items.items()}
  assign = model.cluster_items(warm_feats, seed=0)
  assert assign.shape == (int((~cold).sum()),) and len(set(assign)) == 6
  before = model.clusters.embeddings.numpy().copy()
  assert (model.clusters.embeddings.trainable is (mode == "trainable"))
  model.fit(ds, epochs=1, verbose=0)
  moved = np.abs(model.clusters.embeddings.numpy() - before).max()
  assert (moved > 0) == (mode == "trainable")
  np.testing.assert_array_equal(model.clusters.centroids.numpy(), before)

  schema = AttributeSchema.from_columns({"genre": items["genre"]})
  index = MoLIndex(model, schema.keys)
  index.assign(items["item_id"][~cold], warm_feats, schema.encode({"genre": items["genre"][~cold]}))
  cold_feats = {k: v[cold] for k, v in items.items()}
  index.upsert_items(items["item_id"][cold], cold_feats,
                     schema.encode({"genre": items["genre"][cold]}))
  rows = index.snapshot()
  slots = np.arange(n)                     # warm first, then the cold ones
  order = np.concatenate([np.flatnonzero(~cold), np.flatnonzero(cold)])
  assert list(rows.ids.numpy()[:n].astype(str)) == list(items["item_id"][order])
  # Cold items: nearest centroid of the mean content component (numpy).
  content = model.content_embeddings({k: tf.constant(v) for k, v in cold_feats.items()}).numpy()
  mean = content.mean(axis=1)
  mean /= np.linalg.norm(mean, axis=1, keepdims=True)
  want = (mean @ model.clusters.centroids.numpy().T).argmax(1)
  np.testing.assert_array_equal(rows.cluster_ids.numpy()[n - 12:n], want)
  # Warm items keep their k-means cluster.
  np.testing.assert_array_equal(rows.cluster_ids.numpy()[:n - 12], assign)
  # Stored rows: content components + the (normalised) cluster embedding.
  emb = model.clusters.embeddings.numpy()[want]
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  np.testing.assert_allclose(rows.mol_vectors.numpy()[n - 12:n, :2], content, atol=1e-6)
  np.testing.assert_allclose(rows.mol_vectors.numpy()[n - 12:n, 2], emb, atol=1e-6)
  # Re-upserting a cold item (a newer version) is a replace, not a new slot;
  # the same version again is not applied (ItemIndex's version rule).
  again = index.upsert_items(items["item_id"][cold][:1], {k: v[:1] for k, v in cold_feats.items()},
                             schema.encode({"genre": items["genre"][cold][:1]}), versions=[1])
  assert again.numpy().tolist() == [n - 12] and int(index.num_slots.numpy()) == n
  assert index.snapshot().versions.numpy()[n - 12] == 1
  before = index.snapshot().attributes.numpy()[n - 12].copy()
  index.upsert_items(items["item_id"][cold][:1], {k: v[:1] for k, v in cold_feats.items()},
                     np.zeros([1, 1], np.int32), versions=[1])
  np.testing.assert_array_equal(index.snapshot().attributes.numpy()[n - 12], before)
  assert before.tolist() != [1]
  del slots
  if mode == "fixed":
    check_export(index, model, items, tmp_path_factory.mktemp("mol_export"))

  # Search under filters == numpy brute force over the stored rows.
  query = {"user_id": tf.constant(["u1", "u2", "u3"])}
  filters = ['genre = "Drama"', 'genre IN ("Horror", "Action")', ""]
  scores, ids, count = index.search(query, filters, k=7)
  q = model.query_embeddings(query).numpy()
  bias = model.scorer.gate_bias(q).numpy()
  all_scores = mol_scores_np(q, rows.mol_vectors.numpy()[:n], bias,
                             model.scorer.gate_weight().numpy())
  genre_of = items["genre"][order]
  allowed = [lambda g: "Drama" in g.split("|"),
             lambda g: bool({"Horror", "Action"} & set(g.split("|"))), lambda g: True]
  for b in range(3):
    ok = np.array([allowed[b](g) for g in genre_of])
    best = np.flatnonzero(ok)[np.argsort(-all_scores[b, ok], kind="stable")][:7]
    assert count.numpy()[b] == 7
    np.testing.assert_allclose(scores.numpy()[b], all_scores[b, best], rtol=1e-5, atol=1e-6)
    assert set(ids.numpy()[b].astype(str)) == set(items["item_id"][order][best])
  if mode == "fixed":
    check_concurrent_upserts(index, items, schema)


def check_concurrent_upserts(index, items, schema):
  """Upserts of new ids from several threads at once (a server's request
  threads): every id gets its own slot, none is lost (the writer mutex)."""
  import threading  # pylint: disable=g-import-not-at-top
  feats = {k: tf.constant(v[:4]) for k, v in items.items()}
  bits = tf.constant(attributes_lib.set_live(schema.encode({"genre": items["genre"][:4]})))
  upsert = tf.function(lambda ids: index.upsert(ids, feats, bits, tf.zeros([4], tf.int64)))
  upsert(tf.constant([f"warm-{j}" for j in range(4)]))          # trace once
  start = int(index.num_slots.numpy())
  threads = [threading.Thread(target=lambda t=t: [upsert(tf.constant(
      [f"t{t}-{r}-{j}" for j in range(4)])) for r in range(25)]) for t in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert int(index.num_slots.numpy()) == start + 8 * 25 * 4
  keys, slots = index.slot_of.export()
  ours = {k.decode(): s for k, s in zip(keys.numpy(), slots.numpy()) if k.startswith(b"t")}
  assert len(ours) == 800 and len(set(ours.values())) == 800
  stored = index.snapshot().ids.numpy()
  assert all(stored[s].decode() == k for k, s in ours.items())


def check_export(index, model, items, base):
  """The SavedModel serves what the index serves and its upsert_items writes
  a cold item (nearest cluster in-graph) that the next query can find."""
  query = {"user_id": tf.constant(["u1", "u7"])}
  want_scores, want_ids, want_count = index.search(query, ["", 'genre = "Comedy"'], 5)
  loaded = tf.saved_model.load(export_mol(index, str(base)))
  out = loaded.signatures["serving_default"](user_id=query["user_id"],
                                             filter=tf.constant(["", 'genre = "Comedy"']),
                                             k=tf.constant(5))
  np.testing.assert_array_equal(out["item_ids"].numpy(), want_ids.numpy())
  np.testing.assert_allclose(out["scores"].numpy(), want_scores.numpy(), rtol=1e-6)
  slots = loaded.signatures["upsert_items"](
      item_id=tf.constant(["brand_new"]), genre=tf.constant(["Horror"]),
      year=tf.constant(["2000"]), version=tf.constant([1], tf.int64))["slots"].numpy()
  assert slots.tolist() == [len(items["item_id"])]
  found = loaded.signatures["serving_default"](user_id=tf.constant(["u1"]),
                                               filter=tf.constant(['genre = "Horror"']),
                                               k=tf.constant(500))
  assert b"brand_new" in found["item_ids"].numpy()[0]


def test_two_stage_and_stock_kernels_match(data):
  items, users, pos = data
  cfg = make_config(query_embeddings=3, item_embeddings=2, clusters=0)
  tf.keras.utils.set_random_seed(1)
  model = MoLRetrievalModel(cfg, vocab(items, users, np.ones(len(items["item_id"]), bool)))
  model.compile(optimizer=tf.keras.optimizers.Adagrad(0.2))
  model.fit(dataset(items, users, pos), epochs=1, verbose=0)
  schema = AttributeSchema.from_columns({"genre": items["genre"]})
  attrs = schema.encode({"genre": items["genre"]})
  exhaustive = MoLIndex(model, schema.keys)
  exhaustive.assign(items["item_id"], items, attrs)
  query = tf.constant(["u4", "u5"])
  q = model.query_embeddings({"user_id": query})
  filters = tf.constant(['genre = "Comedy"', ""])
  full, rows = exhaustive.search_slots(q, filters, 10)
  # Stock kernels (portable path): same top-k.
  stock = exhaustive.searcher.with_kernels(StockKernels())
  passing = StockKernels().pass_mask(filters, tf.constant(schema.keys), rows.attributes)
  got = stock.search(q, rows, passing, 10)
  np.testing.assert_array_equal(got.indices.numpy(), full.indices.numpy())
  np.testing.assert_allclose(got.scores.numpy(), full.scores.numpy(), rtol=1e-5, atol=1e-6)
  # Two-stage: dot top-K' over the mean components, exact MoL rerank.
  exhaustive.searcher.rerank_candidates = 500        # >= N: equals exhaustive
  wide, _ = exhaustive.search_slots(q, filters, 10)
  np.testing.assert_array_equal(wide.indices.numpy(), full.indices.numpy())
  exhaustive.searcher.rerank_candidates = 15
  narrow, _ = exhaustive.search_slots(q, filters, 10)
  mean_q = tf.reduce_mean(q, axis=1).numpy()
  dots = mean_q @ rows.vectors.numpy().T
  comedy = np.array(["Comedy" in g.split("|") for g in items["genre"]])
  bias = model.scorer.gate_bias(q).numpy()
  mol = mol_scores_np(q.numpy(), rows.mol_vectors.numpy(), bias, model.scorer.gate_weight().numpy())
  for b, ok in enumerate([comedy, np.ones_like(comedy)]):
    cand = np.flatnonzero(ok)[np.argsort(-dots[b, ok], kind="stable")][:15]
    best = cand[np.argsort(-mol[b, cand], kind="stable")][:10]
    assert set(narrow.indices.numpy()[b]) == set(best)
  assert "rerank" in exhaustive.searcher.describe()
