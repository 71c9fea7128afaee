"""Live updates of the in-model index, against a pure-python reference.

Reference semantics (the version rule of `ItemIndex`), per item id, with last =
the item's version, else its delete's version, else none: upsert / delete
apply iff last is none or v > last; update_attributes applies iff the item
exists and v > its version.
"""


import numpy as np
import pytest
import tensorflow as tf

from linr_tf import export as export_lib
from linr_tf.attributes import AttributeEncoder, AttributeSchema
from linr_tf.index import ItemIndex
from linr_tf.index.live_index import LiveIndex
from linr_tf.model import filter_columns
from torn_rows import check_readers_and_writer, parity_schema


class Reference:
  """Dict replay of the version rule."""

  def __init__(self, items):
    self.items = dict(items)        # id -> (version, embedding, bits)
    self.deleted = {}               # id -> version

  def _last(self, i):
    if i in self.items:
      return self.items[i][0]
    return self.deleted.get(i)

  def upsert(self, i, v, emb, bits):
    last = self._last(i)
    if last is not None and v <= last:
      return False
    self.items[i] = (v, emb, bits)
    self.deleted.pop(i, None)
    return True

  def delete(self, i, v):
    last = self._last(i)
    if last is not None and v <= last:
      return False
    self.items.pop(i, None)
    self.deleted[i] = v
    return True

  def update_attributes(self, i, v, bits):
    if i not in self.items or v <= self.items[i][0]:
      return False
    self.items[i] = (v, self.items[i][1], bits)
    return True


@pytest.fixture(scope="module")
def live(trained, tmp_path_factory):
  model, catalog, cfg = trained
  path = export_lib.export(model, str(tmp_path_factory.mktemp("live")))
  return LiveIndex.load(path), model, catalog, cfg


def _attribute_rows(catalog, cfg, rows):
  categorical, numeric = filter_columns(cfg, catalog.columns)
  cols = {a: np.asarray(c)[rows] for a, c in categorical.items()}
  cols.update({a: np.asarray(v)[rows].astype(np.float64) for a, (v, _) in numeric.items()})
  return cols


def test_attribute_encoder_matches_numpy_encode():
  rng = np.random.default_rng(0)
  langs = rng.choice(["en", "de", "fr"], 200)
  topics = np.array(["|".join(rng.choice(["ai", "ml", "db", ""], 2)) for _ in range(200)])
  ages = rng.choice([-3.0, 0.0, 1.0, 5.99, 6.0, 23.5, 24.0, 1e6], 200)
  schema = AttributeSchema.from_columns({"lang": langs, "topic": topics},
                                        {"age": (ages, [0, 6, 24])})
  want = schema.encode({"lang": langs, "topic": topics, "age": ages})
  got = AttributeEncoder(schema.keys)({"lang": tf.constant(langs), "topic": tf.constant(topics),
                                       "age": tf.constant(ages, tf.float32)})
  np.testing.assert_array_equal(got.numpy(), want)
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown value"):
    AttributeEncoder(schema.keys)({"lang": tf.constant(["xx"]), "topic": tf.constant([""]),
                                   "age": tf.constant([1.0])})
  with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
    AttributeEncoder(schema.keys)({"lang": tf.constant(["en"]), "topic": tf.constant([""]),
                                   "age": tf.constant([np.nan])})


def test_random_updates_match_reference(live):
  """Random batches of every kind (stale, re-ordered, repeated versions, new
  ids beyond the capacity) leave the index equal to the reference; searches
  equal a numpy brute force over the reference."""
  index, model, catalog, cfg = live
  rng = np.random.default_rng(1)
  ref = Reference(index.items())
  assert len(ref.items) == len(catalog)
  n_cat = len(catalog)
  pool = [f"p{i}" for i in range(0, n_cat, 3)] + [f"new{i}" for i in range(1200)]
  for step in range(30):
    kind = ["upsert_embeddings", "upsert_items", "delete", "update_attributes"][step % 4]
    ids = list(rng.choice(pool, size=int(rng.integers(1, 120)), replace=False))
    versions = rng.integers(0, 6, size=len(ids)) + step // 4   # collisions and stale ones
    rows = rng.integers(0, n_cat, size=len(ids))
    attrs = _attribute_rows(catalog, cfg, rows)
    bits = index.schema.encode(attrs, cfg.separator)
    if kind == "upsert_embeddings":
      emb = rng.normal(size=(len(ids), index.dim)).astype(np.float32)
      applied = index.upsert_embeddings(ids, versions, emb, attrs)
      want = [ref.upsert(i, int(v), emb[j], bits[j]) for j, (i, v) in
              enumerate(zip(ids, versions))]
    elif kind == "upsert_items":
      feats = {s.name: np.asarray(catalog.columns[s.name])[rows] for s in cfg.item_features}
      feats[cfg.item_id_feature] = np.array(ids, dtype=object)
      emb = model.item_tower({k: tf.constant(v.astype(np.float32) if v.dtype.kind == "f" else v)
                              for k, v in feats.items()}).numpy()
      fbits = index.schema.encode({a: feats[a] for a in index.attributes}, cfg.separator)
      applied = index.upsert_items(ids, versions, feats)
      want = [ref.upsert(i, int(v), emb[j], fbits[j]) for j, (i, v) in
              enumerate(zip(ids, versions))]
    elif kind == "delete":
      applied = index.delete_items(ids, versions)
      want = [ref.delete(i, int(v)) for i, v in zip(ids, versions)]
    else:
      applied = index.update_attributes(ids, versions, attrs)
      want = [ref.update_attributes(i, int(v), bits[j]) for j, (i, v) in
              enumerate(zip(ids, versions))]
    np.testing.assert_array_equal(applied, want, err_msg=f"step {step} ({kind})")

  got = index.items()
  assert sorted(got) == sorted(ref.items)
  for i, (v, emb, bits) in ref.items.items():
    assert got[i][0] == v, i
    np.testing.assert_allclose(got[i][1], emb, rtol=1e-5, atol=1e-5, err_msg=i)
    np.testing.assert_array_equal(got[i][2], bits, err_msg=i)
  assert index.tombstones() == ref.deleted
  assert len(ref.items) > n_cat  # grew past the initial capacity

  # Filtered search == numpy brute force over the reference's live items.
  ids = np.array(sorted(ref.items))
  mat = np.stack([ref.items[i][1] for i in ids])
  lang_bit = index.schema.keys.index("lang=en")
  passes = np.array([(ref.items[i][2][lang_bit // 32] >> (lang_bit % 32)) & 1 for i in ids],
                    bool)
  queries = rng.normal(size=(3, index.dim)).astype(np.float32)
  scores, got_ids, count = index.search_embeddings(queries, ['lang = "en"'] * 3, 20)
  for b in range(3):
    s = mat[passes] @ queries[b]
    order = np.argsort(-s, kind="stable")[:20]
    assert count[b] == min(20, passes.sum())
    np.testing.assert_allclose(scores[b, :count[b]], s[order], rtol=1e-4, atol=1e-4)
    assert set(got_ids[b, :count[b]].astype(str)) == set(ids[passes][order])


def test_snapshot_restores_state(live, tmp_path):
  index, _, catalog, cfg = live
  before, tomb = index.items(), index.tombstones()
  index.save_snapshot(str(tmp_path / "snap"))
  with pytest.raises(ValueError, match="already exists"):
    index.save_snapshot(str(tmp_path / "snap"))
  attrs = _attribute_rows(catalog, cfg, np.arange(3))
  index.upsert_embeddings(["s1", "s2", "s3"], [9, 9, 9],
                          np.ones((3, index.dim), np.float32), attrs)
  gone = sorted(before)[:5]
  index.delete_items(gone, [10**6] * 5)
  assert "s1" in index.items()
  index.restore_snapshot(str(tmp_path / "snap"))
  after = index.items()
  assert sorted(after) == sorted(before) and index.tombstones() == tomb
  for i in before:
    assert after[i][0] == before[i][0]
    np.testing.assert_array_equal(after[i][1], before[i][1])
  # The restored id table is live: a stale upsert of a restored item is refused.
  some = sorted(before)[0]
  assert not index.upsert_embeddings([some], [before[some][0]],
                                     np.zeros((1, index.dim), np.float32),
                                     _attribute_rows(catalog, cfg, np.arange(1)))[0]


def test_bad_updates_are_rejected_whole(live):
  index, _, catalog, cfg = live
  before = index.items()
  attrs = _attribute_rows(catalog, cfg, np.arange(2))
  emb = np.ones((2, index.dim), np.float32)
  with pytest.raises(ValueError, match="unique"):
    index.upsert_embeddings(["x1", "x1"], [1, 2], emb, attrs)
  with pytest.raises(ValueError, match=r"embeddings must be \[2, "):
    index.upsert_embeddings(["x1", "x2"], [1, 1], emb[:, :3], attrs)
  bad = emb.copy()
  bad[1, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    index.upsert_embeddings(["x1", "x2"], [1, 1], bad, attrs)
  wrong = dict(attrs, lang=np.array(["en", "klingon"], object))
  with pytest.raises(ValueError, match="klingon"):
    index.update_attributes(["p0", "p1"], [50, 50], wrong)
  with pytest.raises(ValueError, match="missing attribute"):
    index.upsert_embeddings(["x1", "x2"], [1, 1], emb, {"lang": attrs["lang"]})
  with pytest.raises(ValueError, match=">= 0"):
    index.delete_items(["x1"], [-1])
  # The signatures check again in-graph (clients that skip LiveIndex).
  fn = index.module.signatures["update_attributes"]
  inputs = {a: tf.constant(v) for a, v in wrong.items()}
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown value"):
    fn(item_id=tf.constant(["p0", "p1"]), version=tf.constant([50, 50], tf.int64), **inputs)
  with pytest.raises(tf.errors.InvalidArgumentError, match="unique"):
    index.module.signatures["delete_items"](item_id=tf.constant(["a", "a"]),
                                           version=tf.constant([1, 2], tf.int64))
  assert sorted(index.items()) == sorted(before)


def test_concurrent_queries_never_see_torn_rows_or_deleted_items():
  """Readers in parallel with a writer: every result's embedding, attributes
  and id belong to one version of the item, and an item deleted before a
  query started is never returned.

  The scheme is tests/torn_rows.py's (shared with the GPU test).
  """
  schema = parity_schema()
  index = ItemIndex(8, schema.keys, name="concurrent_index")
  errors, checked, deleted_at = check_readers_and_writer(index, schema, dim=8, n=400,
                                                         versions=160)
  assert not errors, errors[:5]
  assert checked > 20
  assert deleted_at
