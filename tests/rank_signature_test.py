"""`retrieve_and_rank` (issue 16): ordering, padding and count against a numpy
two-stage reference, export + reload, ranking features updated live."""

import numpy as np
import pytest
import tensorflow as tf

import linr_tf
from linr_tf.export import export
from linr_tf.index.live_index import LiveIndex
from rank_fixtures import GENRES, make_config, make_data, make_model, numpy_ranker

USERS = ["u0", "u1", "u2", "u3"]
# Each filter with the genres it passes (the last passes nothing: padding only).
CASES = [('genre = "drama"', ["drama"]), ("", GENRES), ('genre IN ("action", "horror")',
         ["action", "horror"]), ('genre = "drama" AND genre = "comedy"', [])]
FILTERS = [f for f, _ in CASES]


@pytest.fixture(scope="module")
def built():
  catalog, interactions, _ = make_data(num_items=60)
  cfg = make_config("joint")
  model = make_model(cfg, catalog, interactions)
  model.build_index(catalog)
  for v in model.ranking.ranker.trainable_variables:   # non-trivial ranker weights
    v.assign(v + tf.random.stateless_normal(v.shape, [1, v.shape.num_elements() or 1], 0.2))
  return model, catalog


def reference(model, rows, genres, users, filters, k_retrieve, k_final):
  """Brute force: filter in numpy, top k_retrieve by dot product (ties: smaller
  slot), then the ranker on each retrieved candidate, top k_final by logit."""
  feats = {"user_id": tf.constant(users)}
  q = model.query_tower(feats).numpy()
  rq = model.ranking(feats).numpy()
  ids = rows.ids.numpy().astype(str)
  live = (rows.attributes.numpy()[:, 0] & 1).astype(bool)
  vectors = rows.vectors.numpy()
  out = []
  for b, f in enumerate(filters):
    ok = live & np.isin(genres, dict(CASES)[f])
    slots = np.flatnonzero(ok)
    scores = vectors[slots] @ q[b]
    order = np.lexsort((slots, -scores))[:k_retrieve]
    cand, cand_scores = slots[order], scores[order]
    if len(cand):
      logit, _ = numpy_ranker(model.ranking.ranker, np.repeat(rq[b:b + 1], len(cand), 0),
                              vectors[cand], rows.rank_dense.numpy()[cand],
                              rows.rank_ids.numpy()[cand], cand_scores)
    else:
      logit = np.zeros(0)
    final = np.argsort(-logit, kind="stable")[:k_final]
    out.append((ids[cand[final]], cand_scores[final], logit[final]))
  return out


def check(out, ref, k_final):
  assert out["item_ids"].shape == (len(ref), k_final)
  for b, (ids, rscores, logits) in enumerate(ref):
    n = len(ids)
    assert out["count"].numpy()[b] == n
    got = out["item_ids"].numpy()[b, :n].astype(str)
    np.testing.assert_allclose(out["rank_scores"].numpy()[b, :n], logits, rtol=1e-4, atol=1e-5)
    # Same items in the same order, up to swaps of (near-)equal rank scores
    # (float32 here, float64 in the reference).
    same = got == ids
    np.testing.assert_allclose(out["rank_scores"].numpy()[b, :n][~same], logits[~same],
                               rtol=1e-4, atol=1e-5)
    assert n == 0 or same.mean() > 0.5
    by_id = dict(zip(ids, rscores))
    np.testing.assert_allclose(out["retrieval_scores"].numpy()[b, :n][same], rscores[same],
                               atol=1e-5)
    if n and not same.all():  # swapped items hold their own retrieval scores
      assert all(abs(by_id[i] - r) < 1e-5 for i, r in zip(got[~same], out[
          "retrieval_scores"].numpy()[b, :n][~same]) if i in by_id)
    # Ordered by rank score; padding "" / -inf past count.
    assert np.all(np.diff(out["rank_scores"].numpy()[b, :n]) <= 1e-6)
    assert (out["item_ids"].numpy()[b, n:] == b"").all()
    assert np.isneginf(out["rank_scores"].numpy()[b, n:]).all()
    assert np.isneginf(out["retrieval_scores"].numpy()[b, n:]).all()


def genres_by_slot(catalog, rows):
  by_id = {**dict(zip(catalog.ids, catalog.columns["genre"])), "fresh": "comedy"}
  return np.array([by_id.get(i, "") for i in rows.ids.numpy().astype(str)], object)


@pytest.mark.parametrize("k_retrieve,k_final", [(20, 5), (8, 8), (60, 12), (3, 1)])
def test_in_process_matches_reference(built, k_retrieve, k_final):
  model, catalog = built
  out = model.retrieve_and_rank({"user_id": USERS}, FILTERS, k_retrieve, k_final)._asdict()
  rows = model.index.read_rows()
  check(out, reference(model, rows, genres_by_slot(catalog, rows), USERS, FILTERS,
                       k_retrieve, k_final), k_final)
  # Ranking reorders: the final list is not just the retrieval order.
  assert out["count"].numpy()[3] == 0     # nothing passes the last filter


def test_export_reload_and_live_updates(built, tmp_path):
  model, catalog = built
  path = export(model, str(tmp_path / "export"))
  loaded = linr_tf.load(str(path))
  sig = loaded.signatures["retrieve_and_rank"]
  call = lambda kr, kf: sig(user_id=tf.constant(USERS), filter=tf.constant(FILTERS),  # noqa: E731
                            k_retrieve=tf.constant(kr), k_final=tf.constant(kf))
  live = LiveIndex(loaded)
  assert "rank_dense" in live.layout.names and "rank_ids" in live.layout.names

  def ref(kr, kf):
    rows = live.layout.read(live.rows)
    return reference(model, rows, genres_by_slot(catalog, rows), USERS, FILTERS, kr, kf)

  before = call(20, 5)
  check(before, ref(20, 5), 5)
  in_process = model.retrieve_and_rank({"user_id": USERS}, FILTERS, 20, 5)
  np.testing.assert_array_equal(before["item_ids"].numpy(), in_process.item_ids.numpy())

  # A ranking feature updated live changes the next call's ranking (and only through it).
  top = before["item_ids"].numpy()[1, 0].decode()
  applied = live.update_rank_features([top], [5], rank_dense=[[40.0, -40.0]], rank_ids=[[3]])
  assert applied.tolist() == [True]
  after = call(20, 5)
  check(after, ref(20, 5), 5)
  moved = after["rank_scores"].numpy()[after["item_ids"].numpy() == top.encode()]
  old = before["rank_scores"].numpy()[before["item_ids"].numpy() == top.encode()]
  assert moved.size == 0 or abs(moved[0] - old[0]) > 1e-3
  # Version rule: an older version is not applied.
  assert live.update_rank_features([top], [4], [[0.0, 0.0]], [[0]]).tolist() == [False]
  assert live.update_rank_features(["no-such-item"], [9], [[0.0, 0.0]], [[0]]).tolist() == [False]

  # A new item is rankable at once: upserted with the query's own direction and
  # its ranking features in the same write, it is retrieved and ranked on them.
  q = model.query_tower({"user_id": tf.constant(["u1"])}).numpy()
  live.upsert_embeddings(["fresh"], [1], q, {"genre": ["comedy"]},
                         rank_dense=[[3.0, 1.0]], rank_ids=[[1]])
  rows = live.layout.read(live.rows)
  slot = list(rows.ids.numpy()).index(b"fresh")
  np.testing.assert_array_equal(rows.rank_dense.numpy()[slot], [3.0, 1.0])
  np.testing.assert_array_equal(rows.rank_ids.numpy()[slot], [1])
  out = call(60, 60)
  check(out, ref(60, 60), 60)
  assert b"fresh" in out["item_ids"].numpy()[1]
  live.update_rank_features(["fresh"], [2], [[-3.0, 2.0]], [[2]])
  np.testing.assert_array_equal(live.layout.read(live.rows).rank_dense.numpy()[slot], [-3.0, 2.0])
  check(call(60, 60), ref(60, 60), 60)
  # Without them an upsert writes zeros; the raw signature requires them.
  live.upsert_embeddings(["fresh2"], [1], q, {"genre": ["comedy"]})
  rows = live.layout.read(live.rows)
  slot2 = list(rows.ids.numpy()).index(b"fresh2")
  assert not rows.rank_dense.numpy()[slot2].any() and not rows.rank_ids.numpy()[slot2].any()
  with pytest.raises(ValueError, match="rank_dense must be"):
    live.upsert_embeddings(["fresh3"], [1], q, {"genre": ["comedy"]}, rank_dense=[[1.0]])
  assert set(loaded.signatures["upsert_embeddings"].structured_input_signature[1]) >= {
      "rank_dense", "rank_ids"}

  with pytest.raises(tf.errors.InvalidArgumentError, match="k_final must be <= k_retrieve"):
    call(5, 6)
  with pytest.raises(tf.errors.InvalidArgumentError, match="rank_ids out of range"):
    loaded.signatures["update_rank_features"](
        item_id=tf.constant(["fresh"]), version=tf.constant([3], tf.int64),
        rank_dense=tf.constant([[0.0, 0.0]]), rank_ids=tf.constant([[7]], tf.int64))
  with pytest.raises(ValueError, match="rank_dense must be"):
    live.update_rank_features(["fresh"], [3], [[0.0]], [[0]])
