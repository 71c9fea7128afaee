"""ItemIndex with column stores (exact numbers, value ids) and id-set filters:
search against numpy brute force, live updates of each kind during queries
(never a torn row), memory per kind, and the SavedModel round trip."""

import os
import tempfile
import threading

import numpy as np
import pytest
import tensorflow as tf

from linr_tf.attributes import AttributeSchema
from linr_tf.columns import ColumnSchema
from linr_tf.index import ItemIndex

D = 8


def _catalogue(n, rng):
  companies = np.array([f"co{i}" for i in range(60)] + ["O'Reilly", "Women's"], object)
  authors = np.array([f"au{i}" for i in range(40)], object)
  cols = {
      "lang": rng.choice(["en", "de", "Children's"], n).astype(object),
      "company": rng.choice(companies, n),
      "author": np.array(["|".join(rng.choice(authors, rng.integers(0, 4), replace=False))
                          for _ in range(n)], object),
      "year": rng.integers(1919, 2001, n),
      "score": rng.normal(size=n) * 10,
  }
  return cols


def _index(n=400, seed=0):
  rng = np.random.default_rng(seed)
  cols = _catalogue(n, rng)
  bits_schema = AttributeSchema.from_columns({"lang": cols["lang"]})
  columns = ColumnSchema.from_columns({"company": cols["company"], "author": cols["author"]},
                                      numbers={"year": "int64", "score": "float64"},
                                      widths={"author": 3})
  numbers, value_ids = columns.encode(cols)
  emb = rng.normal(size=(n, D)).astype(np.float32)
  ids = np.array([f"m{j}" for j in range(n)])
  index = ItemIndex(D, bits_schema.keys, columns=columns)
  index.assign(ids, emb, bits_schema.encode({"lang": cols["lang"]}), numbers=numbers,
               value_ids=value_ids)
  return index, cols, emb, ids, bits_schema, columns, rng


def _passing(cols, ids, text):
  """Python evaluator of the few filters used below (on the raw columns)."""
  authors = [set(a.split("|")) - {""} for a in cols["author"]]
  table = {
      'year > 1990': cols["year"] > 1990,
      'year <= 1950 AND company != "O\'Reilly"': (cols["year"] <= 1950) & (cols["company"] != "O'Reilly"),
      'year BETWEEN 1970 AND 1979 OR author ALL ("au1", "au2")':
          ((cols["year"] >= 1970) & (cols["year"] <= 1979)) |
          np.array([{"au1", "au2"} <= a for a in authors]),
      'score >= -1.25 AND lang = "Children\'s"': (cols["score"] >= -1.25) & (cols["lang"] == "Children's"),
      'company IN ("co3", "Women\'s", "not-a-company") AND item_id NOT IN ("m1", "m2", "m3")':
          np.isin(cols["company"], ["co3", "Women's"]) & ~np.isin(ids, ["m1", "m2", "m3"]),
  }
  return table[text], list(table)


@pytest.mark.parametrize("which", range(5))
def test_search_matches_brute_force(which):
  index, cols, emb, ids, *_ , rng = _index()
  _, texts = _passing(cols, ids, 'year > 1990')
  text = texts[which]
  mask, _ = _passing(cols, ids, text)
  queries = rng.normal(size=(2, D)).astype(np.float32)
  scores, got, count = index(queries, tf.constant([text] * 2), 20)
  for b in range(2):
    s = emb @ queries[b]
    s[~mask] = -np.inf
    want = np.argsort(-s, kind="stable")[:min(20, int(mask.sum()))]
    assert int(count[b]) == len(want)
    assert [x.decode() for x in got[b, :len(want)].numpy()] == [ids[i] for i in want]


def test_memory_per_item_reports_each_kind():
  index, *_ = _index(n=10)
  mem = index.memory_per_item_bytes()
  assert mem["attributes"] == 4 and mem["numbers"] == 16 and mem["value_ids"] == 16


def test_live_updates_of_every_kind():
  index, cols, emb, ids, bits_schema, columns, rng = _index(n=50)
  new = {"lang": np.array(["Children's"], object), "company": np.array(["brand-new"], object),
         "author": np.array(["au5|fresh"], object), "year": np.array([2026]),
         "score": np.array([0.5])}
  numbers, value_ids = columns.encode(new, grow=True)
  index.register_values()
  q = emb[:1]
  res = index.upsert(["fresh-item"], [1], q, bits_schema.encode({"lang": new["lang"]}),
                     numbers=numbers, value_ids=value_ids)
  assert bool(res.applied[0])
  _, got, count = index(q, tf.constant(['company = "brand-new" AND author = "fresh" AND year >= 2026']), 5)
  assert int(count[0]) == 1 and got[0, 0].numpy() == b"fresh-item"
  # update_attributes rewrites the columns too.
  numbers2, value_ids2 = columns.encode({**new, "company": np.array(["co1"], object),
                                         "year": np.array([1999])}, grow=True)
  index.register_values()
  index.update_attributes(["fresh-item"], [2], bits_schema.encode({"lang": new["lang"]}),
                          numbers=numbers2, value_ids=value_ids2)
  _, _, count = index(np.repeat(q, 2, 0), tf.constant(['company = "brand-new"', 'item_id = "fresh-item" AND year = 1999 AND company = co1']), 5)
  assert count.numpy().tolist() == [0, 1]
  index.delete(["fresh-item"], [3])
  _, _, count = index(q, tf.constant(['item_id IN ("fresh-item")']), 5)
  assert int(count[0]) == 0


def test_updates_during_queries_never_tear_a_row():
  # Every item flips between state A (year 1, company "a") and B (year 2,
  # company "b"); a torn row would pass one of the mixed filters.
  n = 64
  bits_schema = AttributeSchema.from_columns({"lang": np.array(["en"], object)})
  columns = ColumnSchema({"year": "int64"}, {"company": 1}, {"company": ["a", "b"]})
  ids = [f"x{i}" for i in range(n)]
  emb = np.random.default_rng(0).normal(size=(n, D)).astype(np.float32)
  bits = bits_schema.encode({"lang": np.array(["en"] * n, object)})

  def state(which):
    return columns.encode({"year": np.full(n, which), "company": np.array(["ab"[which - 1]] * n, object)})

  index = ItemIndex(D, bits_schema.keys, columns=columns)
  numbers, value_ids = state(1)
  index.assign(np.array(ids), emb, bits, numbers=numbers, value_ids=value_ids)
  search = tf.function(lambda q, f: index(q, f, n))
  filters = tf.constant(['year = 1 AND company = "b"', 'year = 2 AND company = "a"',
                         '(year = 1 AND company = "a") OR (year = 2 AND company = "b")'])
  stop = threading.Event()
  errors = []

  def writer():
    version = 1
    while not stop.is_set():
      version += 1
      numbers, value_ids = state(1 + version % 2)
      index.upsert(ids, [version] * n, emb, bits, numbers=numbers, value_ids=value_ids)

  thread = threading.Thread(target=writer)
  thread.start()
  try:
    for _ in range(150):
      _, _, count = search(emb[:3], filters)
      if count.numpy().tolist() != [0, 0, n]:
        errors.append(count.numpy().tolist())
  finally:
    stop.set()
    thread.join()
  assert not errors, errors[:3]


def test_saved_model_round_trip():
  index, cols, emb, ids, *_ = _index(n=120)
  texts = ['year > 1990', 'company IN ("co3", "Women\'s") OR item_id = "m7"',
           'author ALL ("au1", "au2") OR score BETWEEN -1 AND 1']
  queries = emb[:3]
  before = index(queries, tf.constant(texts), 10)
  module = tf.Module()
  module.index = index
  module.search = tf.function(
      lambda q, f: index(q, f, 10),
      input_signature=[tf.TensorSpec([None, D], tf.float32), tf.TensorSpec([None], tf.string)])
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "m")
    tf.saved_model.save(module, path)
    loaded = tf.saved_model.load(path)
    after = loaded.search(tf.constant(queries), tf.constant(texts))
  for a, b in zip(before, after):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert int(after[2][0]) == min(10, int((cols["year"] > 1990).sum()))


def test_movielens_shaped_catalogue_loads_and_filters_exactly():
  # MovieLens-100k's shape: multi-valued genres with apostrophes and dashes,
  # release years 1922-1998, every threshold exact.
  rng = np.random.default_rng(7)
  genres = ["Action", "Children's", "Film-Noir", "Sci-Fi", "Comedy", "Drama", "unknown"]
  n = 1682
  cells = np.array(["|".join(rng.choice(genres, rng.integers(1, 4), replace=False))
                    for _ in range(n)], object)
  years = rng.integers(1922, 1999, n)
  from linr_tf.filter_kinds import choose_kinds, encode_stores
  bits_schema, columns = choose_kinds({"genre": cells}, {"year": years})
  assert "genre=Children's" in bits_schema.keys and columns.numbers == {"year": "int64"}
  bits, numbers, value_ids = encode_stores(bits_schema, columns, {"genre": cells, "year": years})
  emb = rng.normal(size=(n, D)).astype(np.float32)
  index = ItemIndex(D, bits_schema.keys, columns=columns)
  index.assign(np.array([f"movie{i}" for i in range(n)]), emb, bits, numbers=numbers,
               value_ids=value_ids)
  children = np.array(["Children's" in c.split("|") for c in cells])
  thresholds = list(range(1921, 2000))
  texts = [f'genre = "Children\'s" AND year > {t}' for t in thresholds]
  texts += [f"year <= {t}.5 AND genre IN ('Children\\'s', \"Film-Noir\")" for t in thresholds]
  _, _, count = index(np.repeat(emb[:1], len(texts), 0), tf.constant(texts), n)
  noir = np.array(["Film-Noir" in c.split("|") for c in cells])
  want = [int((children & (years > t)).sum()) for t in thresholds]
  want += [int(((children | noir) & (years <= t)).sum()) for t in thresholds]
  assert count.numpy().tolist() == want


def test_choose_kinds_by_cardinality():
  from linr_tf.filter_kinds import choose_kinds
  rng = np.random.default_rng(0)
  bits_schema, columns = choose_kinds(
      {"lang": rng.choice(["en", "de"], 100), "company": np.array([f"c{i}" for i in range(100)])},
      {"followers": rng.integers(0, 10, 100), "age": rng.random(100)},
      bitset_max_values=50)
  assert bits_schema.attributes == ["lang"]
  assert list(columns.values) == ["company"]
  assert columns.numbers == {"followers": "int64", "age": "float64"}
  bits_schema, columns = choose_kinds({"company": np.array(["a", "b"])}, {"age": np.array([1.0])},
                                      kinds={"company": "value_ids", "age": "buckets"},
                                      boundaries={"age": [0.5]})
  assert list(columns.values) == ["company"] and "age@[,0.5)" in bits_schema.keys
  with pytest.raises(ValueError, match="kind 'int64' not one of"):
    choose_kinds({"company": np.array(["a"])}, {}, kinds={"company": "int64"})


def test_nan_numbers_and_overfull_cells_are_refused():
  columns = ColumnSchema({"age": "float64", "n": "int64"}, {"author": 2}, {"author": ["a", "b", "c"]})
  good = {"age": [1.0], "n": [1], "author": np.array(["a"], object)}
  with pytest.raises(ValueError, match="attribute 'age': NaN value at row 1"):
    columns.encode({**good, "age": [1.0, float("nan")], "n": [1, 2],
                    "author": np.array(["a", "b"], object)})
  with pytest.raises(ValueError, match="int64 column got 1.5 at row 0"):
    columns.encode({**good, "n": [1.5]})
  with pytest.raises(ValueError, match="row 0 holds 3 values, more than its width 2"):
    columns.encode({**good, "author": np.array(["a|b|c"], object)})
  with pytest.raises(ValueError, match="unknown value 'zz' \\(row 0\\)"):
    columns.encode({**good, "author": np.array(["zz"], object)})


def test_integer_id_cells_encode_like_their_text():
  rng = np.random.default_rng(3)
  ints = rng.integers(0, 50, (200, 3))
  ints[rng.random((200, 3)) < 0.3] = -1
  text = np.array(["|".join(str(v) for v in row if v >= 0) for row in ints], object)
  by_text = ColumnSchema.from_columns({"author": text})
  by_int = ColumnSchema.from_columns({"author": ints})
  assert sorted(by_text.vocabulary("author")) == sorted(by_int.vocabulary("author"))
  # One schema, both paths: the same ids.
  np.testing.assert_array_equal(by_int.encode({"author": text})[1],
                                by_int.encode({"author": ints})[1])
  with pytest.raises(ValueError, match="unknown value '999' \\(row 0\\)"):
    by_int.encode({"author": np.array([[999, -1, -1]])})
  _, grown = by_int.encode({"author": np.array([[999, 1, -1]])}, grow=True)
  assert by_int.vocabulary("author")[-1] == "999"


def test_portable_search_rejects_column_predicates_by_name():
  from linr_tf.export_portable import PortableIndex
  index, cols, emb, ids, *_ = _index(n=60)
  portable = PortableIndex(index)
  _, _, count = portable(emb[:1], tf.constant(['lang = "Children\'s"']), 5)
  assert int(count[0]) == min(5, int((cols["lang"] == "Children's").sum()))
  for text, predicate in [('lang = en AND year > 1990', "year > 1990"),
                          ('company IN ("co1")', 'company IN ("co1")'),
                          ('item_id NOT IN ("m1")', 'item_id NOT IN ("m1")')]:
    with pytest.raises(tf.errors.InvalidArgumentError, match="portable export evaluates") as e:
      portable(emb[:1], tf.constant([text]), 5)
    assert predicate in str(e.value)
