"""ItemIndex: state as variables, filtered exhaustive search vs numpy brute force."""

import numpy as np
import pytest
import tensorflow as tf

import reference
from linr_tf.attributes import AttributeSchema
from linr_tf.index import ItemIndex

ATTRS = {"lang": ["en", "de", "fr"], "type": ["post", "article", "job"],
         "topic": ["ai", "ml", "jobs", "sports"]}


def _catalog(n, rng):
  cols = {a: rng.choice(v, n) for a, v in ATTRS.items()}
  # Multi-valued topics on a third of the items.
  extra = rng.choice(ATTRS["topic"], n)
  multi = rng.random(n) < 0.33
  cols["topic"] = np.array([f"{t}|{e}" if m and e != t else t
                            for t, e, m in zip(cols["topic"], extra, multi)])
  return cols


def _index(n=500, d=16, seed=0):
  rng = np.random.default_rng(seed)
  cols = _catalog(n, rng)
  schema = AttributeSchema.from_columns(cols)
  emb = rng.normal(size=(n, d)).astype(np.float32)
  ids = np.array([f"i{j}" for j in range(n)])
  index = ItemIndex(d, schema.keys)
  index.assign(ids, emb, schema.encode(cols))
  return index, cols, emb, ids, rng


SPECS = [
    [],
    [("lang", ["en"])],
    [("lang", ["en"]), ("type", ["post", "article"])],
    [("topic", ["ai"])],
    [("topic", ["ai", "sports"]), ("lang", ["de", "fr"]), ("type", ["job"])],
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("k", [1, 10, 600])
def test_filtered_search_matches_brute_force(spec, k):
  index, cols, emb, ids, rng = _index()
  queries = rng.normal(size=(3, emb.shape[1])).astype(np.float32)
  text = reference.filter_text(spec)
  scores, got_ids, count = index(queries, tf.constant([text] * 3), k)
  mask = reference.passes(cols, spec)
  for b in range(3):
    ref_scores, ref_pos = reference.top_k(queries[b], emb, mask, k)
    n = int(count[b])
    assert n == min(k, int(mask.sum()))
    got = [x.decode() for x in got_ids[b].numpy()]
    np.testing.assert_allclose(scores[b, :n], ref_scores, rtol=1e-5, atol=1e-5)
    # Every returned item passes the filter, the rest is padding.
    pos = [int(x[1:]) for x in got[:n]]
    assert mask[pos].all()
    assert got[n:] == [""] * (k - n)
    assert np.all(np.isneginf(scores[b, n:]))
    if n:
      np.testing.assert_allclose(scores[b, :n], emb[pos] @ queries[b], rtol=1e-5,
                                 atol=1e-5)


def test_cleared_live_bit_removes_item_and_valid_reflects_it():
  index, cols, emb, ids, rng = _index(n=50)
  q = emb[7:8] * 10.0                    # item 7 is the clear winner
  _, top, _ = index(q, None, 1)
  assert top[0, 0].numpy() == b"i7"
  attrs = index.read_rows(["attributes"]).attributes.numpy().copy()   # int32 view
  attrs[7, 0] &= ~1
  index.attributes.assign(index.layout.to_storage(["attributes"], [attrs])[0])
  assert not index.valid.numpy()[7] and index.valid.numpy().sum() == 49
  _, top, count = index(q, None, 50)
  assert b"i7" not in top[0].numpy().tolist() and int(count[0]) == 49


def test_one_filter_per_query():
  index, cols, emb, ids, rng = _index()
  queries = rng.normal(size=(len(SPECS), emb.shape[1])).astype(np.float32)
  texts = [reference.filter_text(s) for s in SPECS]
  _, got, count = index(queries, tf.constant(texts), 20)
  for b, spec in enumerate(SPECS):
    mask = reference.passes(cols, spec)
    _, ref_pos = reference.top_k(queries[b], emb, mask, 20)
    n = int(count[b])
    assert sorted(x.decode() for x in got[b, :n].numpy()) == sorted(ids[ref_pos])


def test_assign_validates_shapes_and_values():
  index, *_ = _index(n=10, d=4)
  with pytest.raises(ValueError, match=r"embeddings must be \[N, 4\]"):
    index.assign(["a"], np.zeros((1, 3)), np.ones((1, 1), np.int32))
  with pytest.raises(ValueError, match="differ in length"):
    index.assign(["a", "b"], np.zeros((1, 4)), np.ones((1, 1), np.int32))
  with pytest.raises(ValueError, match="NaN"):
    index.assign(["a"], np.full((1, 4), np.nan), np.ones((1, 1), np.int32))


def test_bad_filters_raise_invalid_argument():
  index, *_ = _index(n=10, d=4)
  q = np.ones((1, 4), np.float32)
  for text, word in [('lnag = "en"', "lnag"), ('lang = "xx"', "xx"),
                     ('lang = ', "position"), ("__live__ = 1", "__live__")]:
    with pytest.raises(tf.errors.InvalidArgumentError, match=word):
      index(q, tf.constant([text]), 3)
  with pytest.raises(tf.errors.InvalidArgumentError, match="k"):
    index(q, None, 0)


def test_schema_encode_rejects_unknown_value():
  schema = AttributeSchema.from_columns({"lang": np.array(["en", "de"])})
  assert schema.keys == ["__live__", "lang=de", "lang=en"]
  bits = schema.encode({"lang": np.array(["en", "de"])})
  np.testing.assert_array_equal(bits[:, 0], [0b101, 0b011])
  with pytest.raises(ValueError, match="unknown value 'fr'"):
    schema.encode({"lang": np.array(["fr"])})
