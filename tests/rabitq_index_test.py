"""An index with RaBitQ codes: the filtered top-k of `RaBitQSearch` (and its
exact rerank) against a numpy brute force, the stock-op kernels, memory, and
the per-item factors through live updates, snapshots, the SavedModel round
trip and the portable export."""

import dataclasses
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

import conftest
import linr_tf
from linr_tf import config as config_lib
from linr_tf import export as export_lib
from linr_tf import export_portable
from linr_tf.attributes import AttributeSchema
from linr_tf.index import ItemIndex
from linr_tf.index.live_index import LiveIndex
from linr_tf.quantization import RaBitQ, SignOPORP, two_stage_search
from linr_tf.search import RaBitQSearch, RefineSearch, StockKernels

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops"))
from asym_reference import scores_np  # noqa: E402


def _topk(scores, k):
  order = np.lexsort((np.arange(scores.size), -scores))   # score desc, index asc
  return order[:k]


@pytest.fixture(scope="module")
def catalogue():
  rng = np.random.default_rng(0)
  n, dim = 900, 32
  langs = rng.choice(["en", "de", "fr"], n)
  schema = AttributeSchema.from_columns({"lang": langs})
  emb = (rng.normal(size=(n, dim)) * rng.uniform(0.2, 2.0, (n, 1))).astype(np.float32)
  return [f"i{j}" for j in range(n)], emb, schema, schema.encode({"lang": langs}), langs


FILTERS = ['lang = "en"', "", 'lang IN ("de", "fr")', 'lang = "en" AND lang = "de"']


@pytest.mark.parametrize("vectors", [None, "float16"])
@pytest.mark.parametrize("query_bits", [1, 4, 8])
def test_filtered_top_k_equals_brute_force(catalogue, vectors, query_bits):
  ids, emb, schema, bits, langs = catalogue
  rq = RaBitQ(emb.shape[1], 128, seed=3, query_bits=query_bits)
  index = ItemIndex(emb.shape[1], schema.keys, vectors=vectors, quantizer=rq, rerank_factor=4)
  assert isinstance(index.searcher.coarse if vectors else index.searcher, RaBitQSearch)
  index.assign(ids, emb, bits)
  queries = np.random.default_rng(1).normal(size=(4, emb.shape[1])).astype(np.float32)
  k = 25
  scores, got, count = index(queries, tf.constant(FILTERS), k=k)
  codes, factors = (t.numpy() for t in rq.encode_items(emb))
  planes, scales = (t.numpy() for t in rq.encode_query(queries))
  est = scores_np(planes, scales, codes, factors)              # of <o - c, q>
  np.testing.assert_allclose(rq.center.numpy(), emb.mean(0), rtol=1e-4, atol=1e-6)
  offset = queries @ rq.center.numpy()                        # <c, q>
  passes = [langs == "en", np.ones(len(ids), bool), langs != "en", np.zeros(len(ids), bool)]
  for b in range(4):
    eligible = np.flatnonzero(passes[b])
    assert count[b] == min(k, eligible.size)
    if vectors is None:
      top = eligible[_topk(est[b, eligible], k)]
      want = est[b, top] + offset[b]
    else:
      cand = eligible[_topk(est[b, eligible], 4 * k)]
      exact = emb[cand].astype(np.float16).astype(np.float32) @ queries[b]
      top = cand[_topk(exact, k)]
      want = emb[top].astype(np.float16).astype(np.float32) @ queries[b]
    assert list(got[b, :count[b]].numpy().astype(str)) == [ids[j] for j in top]
    np.testing.assert_allclose(scores[b, :count[b]], want, rtol=1e-5, atol=1e-5)


def test_stock_kernels_agree(catalogue):
  """The portable kernels: same candidates (float32 matmul, so scores agree
  to rounding) and, after the rerank, the same results."""
  ids, emb, schema, bits, _ = catalogue
  rq = RaBitQ(emb.shape[1], 128, seed=4, query_bits=4)
  index = ItemIndex(emb.shape[1], schema.keys, vectors="float32", quantizer=rq, rerank_factor=3)
  index.assign(ids, emb, bits)
  queries = np.random.default_rng(2).normal(size=(4, emb.shape[1])).astype(np.float32)
  rows = index.read_rows()
  custom = index.searcher
  stock = custom.with_kernels(StockKernels())
  for searcher_pair in ((custom.coarse, stock.coarse), (custom, stock)):
    out = []
    for s in searcher_pair:
      passing = s.kernels.pass_mask(tf.constant(FILTERS), index.bit_keys, rows.attributes)
      out.append(s.search(tf.constant(queries), rows, passing, 30))
    np.testing.assert_array_equal(out[0].count, out[1].count)
    np.testing.assert_allclose(out[0].scores, out[1].scores, rtol=1e-4, atol=1e-4)
    same = (out[0].indices.numpy() == out[1].indices.numpy()).mean()
    assert same > 0.97


def test_two_stage_search_with_rabitq(catalogue):
  _, emb, _, _, _ = catalogue
  rq = RaBitQ(emb.shape[1], 64, seed=1)
  codes, factors = rq.encode_items(emb)
  queries = emb[:3] + 0.01
  # 400 candidates of 900: the exact top 5 are among them.
  found = two_stage_search(queries, rq, codes, emb, k=5, rerank_factor=80, item_factors=factors)
  exact = queries @ emb.T
  want = np.stack([_topk(row, 5) for row in exact])
  np.testing.assert_array_equal(found.indices.numpy(), want)
  with pytest.raises(ValueError, match="item_factors go with a RaBitQ"):
    two_stage_search(queries, rq, codes, emb, k=5)
  with pytest.raises(ValueError, match="item_factors go with a RaBitQ"):
    two_stage_search(queries, SignOPORP(emb.shape[1], 64), codes, emb, k=5, item_factors=factors)


def test_memory_per_item_counts_the_factor(catalogue):
  _, _, schema, _, _ = catalogue
  index = ItemIndex(64, schema.keys, vectors=None, quantizer=RaBitQ(64, 96))
  mem = index.memory_per_item_bytes()
  assert mem["codes"] == 12 and mem["code_factors"] == 4
  assert 64 * 4 / (mem["codes"] + mem["code_factors"]) == 16.0   # 16x vs fp32 vectors
  assert "code_factors" not in ItemIndex(64, schema.keys, quantizer=SignOPORP(64, 96)
                                         ).memory_per_item_bytes()


def test_live_updates_write_the_factors(catalogue):
  ids, emb, schema, bits, _ = catalogue
  rq = RaBitQ(emb.shape[1], 64, seed=2)
  index = ItemIndex(emb.shape[1], schema.keys, vectors=None, quantizer=rq)
  index.assign(ids[:10], emb[:10], bits[:10])
  new = emb[10:13] * 5.0
  assert index.upsert(["a", "b", "i0"], [1, 1, 1], new, bits[10:13]).applied.numpy().all()
  rows = index.items()
  codes, factors = rq.encode_items(new)
  pos = {i.decode(): j for j, i in enumerate(rows.ids)}
  for j, name in enumerate(["a", "b", "i0"]):
    np.testing.assert_array_equal(rows.codes[pos[name]], codes.numpy()[j])
    assert rows.code_factors[pos[name]] == pytest.approx(float(factors[j]), rel=1e-6)
  scores, got, _ = index(new[:1], None, k=1)
  assert got.numpy()[0, 0] == b"a"


@pytest.fixture(scope="module")
def rabitq_model(feed):
  cfg, catalog, log, _ = feed
  cfg = dataclasses.replace(cfg, index=config_lib.IndexConfig(
      vectors="float16", code_bits=64, code_seed=5, rerank_factor=4, code_scorer="rabitq",
      query_bits=4))
  return conftest.train_small(cfg, catalog, log)


def test_config_chooses_the_scorer():
  with pytest.raises(ValueError, match="code_scorer"):
    config_lib.IndexConfig(code_bits=64, code_scorer="lsh")
  with pytest.raises(ValueError, match="query_bits"):
    config_lib.IndexConfig(code_bits=64, code_scorer="rabitq", query_bits=3)
  assert config_lib.IndexConfig(code_bits=64, code_scorer="rabitq").code_factors
  assert not config_lib.IndexConfig(code_bits=64).code_factors


def test_saved_model_round_trip_live_updates_and_snapshots(rabitq_model, tmp_path):
  model, catalog, cfg = rabitq_model
  assert isinstance(model.index.searcher.coarse, RaBitQSearch)
  path = export_lib.export(model, str(tmp_path / "fast"))
  loaded = linr_tf.load(path)
  users = ["u0", "u1", "u2"]
  filters = ['lang = "en"', "", 'topic = "ai"']
  out = loaded.signatures["serving_default"](user_id=tf.constant(users),
                                             filter=tf.constant(filters), k=tf.constant(20))
  scores, ids, _ = model.retrieve({"user_id": users}, filters, 20)
  np.testing.assert_array_equal(out["item_ids"].numpy(), ids.numpy())
  np.testing.assert_allclose(out["scores"].numpy(), scores.numpy(), rtol=1e-5)
  np.testing.assert_array_equal(loaded.index.code_factors.numpy(),
                                model.index.code_factors.numpy())

  portable = export_portable.export_portable(model, str(tmp_path / "portable"))
  p_out = tf.saved_model.load(portable).signatures["serving_default"](
      user_id=tf.constant(users), filter=tf.constant(["", "", ""]), k=tf.constant(20))
  _, f_ids, _ = model.retrieve({"user_id": users}, ["", "", ""], 20)
  assert (p_out["item_ids"].numpy() == f_ids.numpy()).mean() > 0.95

  live = LiveIndex(loaded)
  assert "code_factors" in live.layout.names
  q = model.query_tower({"user_id": tf.constant(["u0"])}).numpy()
  emb = q * 3.0
  attrs = {a: np.asarray(catalog.columns[a])[:1] for a in live.attributes}
  attrs["age_hours"] = attrs["age_hours"].astype(np.float32)
  live.save_snapshot(str(tmp_path / "snap"))
  assert live.upsert_embeddings(["fresh"], [1], emb, attrs).all()
  _, top, _ = live.search({"user_id": ["u0"]}, [""], 5)
  assert top[0, 0] == b"fresh"
  snap = live.layout.read(live.rows)
  slot = list(snap.ids.numpy()).index(b"fresh")
  want = model.index.quantizer.item_factors(emb).numpy()[0]
  assert snap.code_factors.numpy()[slot] == pytest.approx(float(want), rel=1e-6)
  live.restore_snapshot(str(tmp_path / "snap"))
  _, top, _ = live.search({"user_id": ["u0"]}, [""], 5)
  assert b"fresh" not in top[0]
