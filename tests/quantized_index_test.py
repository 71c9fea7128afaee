"""An ItemIndex holding 1-bit codes: brute-force equality, memory, SavedModel
round trip, encoder mismatch errors, live updates."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import conftest
import linr_tf
from linr_tf import config as config_lib
from linr_tf import export as export_lib
from linr_tf.attributes import AttributeSchema
from linr_tf.index import ItemIndex
from linr_tf.index.live_index import LiveIndex
from linr_tf.quantization import SignOPORP


def _matching_bits(a, b):
  """numpy popcount reference: [B, N] matching bits of packed int32 codes."""
  x = np.bitwise_xor(a[:, None, :].view(np.uint32), b[None, :, :].view(np.uint32))
  diff = np.unpackbits(x.view(np.uint8), axis=-1).sum(-1)
  return 32 * a.shape[1] - diff


def _topk(scores, k):
  order = np.lexsort((np.arange(scores.size), -scores))   # score desc, index asc
  return order[:k]


@pytest.fixture(scope="module")
def catalogue():
  rng = np.random.default_rng(0)
  n, dim = 700, 32
  langs = rng.choice(["en", "de", "fr"], n)
  schema = AttributeSchema.from_columns({"lang": langs})
  emb = rng.normal(size=(n, dim)).astype(np.float32)
  return [f"i{j}" for j in range(n)], emb, schema, schema.encode({"lang": langs}), langs


@pytest.mark.parametrize("vectors", [None, "float16"])
def test_filtered_top_k_equals_brute_force(catalogue, vectors):
  ids, emb, schema, bits, langs = catalogue
  enc = SignOPORP(emb.shape[1], 128, seed=3)
  index = ItemIndex(emb.shape[1], schema.keys, vectors=vectors, quantizer=enc,
                    rerank_factor=4)
  index.assign(ids, emb, bits)
  rng = np.random.default_rng(1)
  queries = rng.normal(size=(4, emb.shape[1])).astype(np.float32)
  filters = ['lang = "en"', "", 'lang IN ("de", "fr")', 'lang = "en" AND lang = "de"']
  k = 25
  scores, got, count = index(queries, tf.constant(filters), k=k)
  item_codes = enc.encode(emb).numpy()
  query_codes = enc.encode(queries).numpy()
  matches = _matching_bits(query_codes, item_codes)
  passes = [langs == "en", np.ones(len(ids), bool), langs != "en", np.zeros(len(ids), bool)]
  for b in range(4):
    eligible = np.flatnonzero(passes[b])
    assert count[b] == min(k, eligible.size)
    if vectors is None:
      top = eligible[_topk(matches[b, eligible].astype(np.float64), k)]
      want = np.cos(np.pi * (1 - matches[b, top] / 128.0))
    else:
      cand = eligible[_topk(matches[b, eligible].astype(np.float64), 4 * k)]
      exact = emb[cand].astype(np.float16).astype(np.float32) @ queries[b]
      top = cand[_topk(exact, k)]
      want = emb[top].astype(np.float16).astype(np.float32) @ queries[b]
    assert list(got[b, :count[b]].numpy().astype(str)) == [ids[j] for j in top]
    np.testing.assert_allclose(scores[b, :count[b]], want, rtol=1e-5, atol=1e-5)


def test_memory_per_item(catalogue):
  _, _, schema, _, _ = catalogue
  index = ItemIndex(128, schema.keys, vectors="float16", quantizer=SignOPORP(128, 128))
  mem = index.memory_per_item_bytes()
  assert mem["vectors"] == 256 and mem["codes"] == 16   # 16x smaller code store
  codes_only = ItemIndex(128, schema.keys, vectors=None, quantizer=SignOPORP(128, 128))
  assert "vectors" not in codes_only.memory_per_item_bytes()
  with pytest.raises(ValueError, match="needs vectors, codes"):
    ItemIndex(128, schema.keys, vectors=None)
  with pytest.raises(ValueError, match="quantizer dim"):
    ItemIndex(64, schema.keys, quantizer=SignOPORP(128, 128))


def test_fingerprint_names_the_encoder():
  a = SignOPORP(32, 128, seed=1)
  assert a.fingerprint == SignOPORP(32, 128, seed=1).fingerprint
  assert len({a.fingerprint, SignOPORP(32, 128, seed=2).fingerprint,
              SignOPORP(32, 256, seed=1).fingerprint,
              SignOPORP(64, 128, seed=1).fingerprint}) == 4


@pytest.fixture(scope="module")
def quantized_model(feed):
  cfg, catalog, log, _ = feed
  cfg = dataclasses.replace(cfg, index=config_lib.IndexConfig(
      vectors="float16", code_bits=64, code_seed=5, rerank_factor=8))
  return conftest.train_small(cfg, catalog, log)


def test_saved_model_round_trip_and_encoder_checks(quantized_model, tmp_path):
  model, catalog, cfg = quantized_model
  path = export_lib.export(model, str(tmp_path))
  loaded = linr_tf.load(path)
  users = ["u0", "u1", "u2"]
  filters = ['lang = "en"', "", 'topic = "ai"']
  out = loaded.signatures["serving_default"](user_id=tf.constant(users),
                                             filter=tf.constant(filters),
                                             k=tf.constant(20))
  scores, ids, count = model.retrieve({"user_id": users}, filters, 20)
  np.testing.assert_array_equal(out["item_ids"].numpy(), ids.numpy())
  np.testing.assert_allclose(out["scores"].numpy(), scores.numpy(), rtol=1e-5)
  # Codes encoded by the client with the same encoder.
  enc = SignOPORP(cfg.embedding_dim, 64, seed=5)
  q = model.query_tower({"user_id": tf.constant(users)})
  fn = loaded.signatures["retrieve_codes"]
  got = fn(query_codes=enc.encode(q), code_fingerprint=tf.constant(enc.fingerprint, tf.int64),
           filter=tf.constant(filters), k=tf.constant(10))
  item_codes = enc.encode(model.index.vectors.numpy().astype(np.float32)).numpy()
  matches = _matching_bits(enc.encode(q).numpy(), item_codes)
  np.testing.assert_array_equal(np.sort(got["scores"].numpy()[1])[::-1],
                                np.sort(matches[1])[::-1][:10])
  other = SignOPORP(cfg.embedding_dim, 64, seed=6)
  with pytest.raises(tf.errors.InvalidArgumentError, match="different Sign-OPORP encoder"):
    fn(query_codes=other.encode(q), code_fingerprint=tf.constant(other.fingerprint, tf.int64),
       filter=tf.constant(filters), k=tf.constant(10))
  wide = SignOPORP(cfg.embedding_dim, 128, seed=5)
  with pytest.raises(tf.errors.InvalidArgumentError, match="2 int32 words"):
    fn(query_codes=wide.encode(q), code_fingerprint=tf.constant(enc.fingerprint, tf.int64),
       filter=tf.constant(filters), k=tf.constant(10))

  # Live updates reach the code store too.
  live = LiveIndex(loaded)
  emb = q.numpy()[:1] * 3.0      # a vector that user u0 must rank first
  attrs = {a: np.asarray(catalog.columns[a])[:1] for a in live.attributes}
  attrs["age_hours"] = attrs["age_hours"].astype(np.float32)
  assert live.upsert_embeddings(["fresh"], [1], emb, attrs).all()
  _, top, _ = live.search({"user_id": ["u0"]}, [""], 5)
  assert top[0, 0] == b"fresh"
  with pytest.raises(ValueError, match="NaN"):
    live.upsert_embeddings(["nan"], [1], emb * np.nan, attrs)
