"""Text dual encoder: pooling and losses vs numpy, a tiny model.fit (loss
falls), export with a Matryoshka prefix into the item index, reload, query
with plain strings, upsert_items from text, filters and 1-bit codes."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.export import save_module  # noqa: E402
from linr_tf.quantization.sign_oporp import SignOPORP  # noqa: E402
from linr_tf.text import (BertConfig, BertEncoder, BCELoss, InfoNCELoss,  # noqa: E402
                          ItemPrompt, MatryoshkaLoss, PercentileBuckets, Pooling,
                          PromptConfig, TextRetrievalModel, TextTokenizer, TextTower,
                          build_item_prompts)
from linr_tf.text import export as text_export  # noqa: E402

WORDS = ["red", "green", "blue", "cat", "dog", "fish", "fast", "slow", "big", "small",
         "genres", ":", ";", ",", "|", "watched", "action", "drama", "comedy"]
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"[unused{i}]" for i in range(8)]
         + WORDS + [str(i) for i in range(101)])


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _np_logsoftmax(z):
  z = z - z.max(axis=1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_pooling_matches_numpy():
  rng = np.random.default_rng(0)
  h = rng.normal(size=(3, 5, 4)).astype(np.float32)
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], np.int32)
  mean = Pooling("mean")(h, mask).numpy()
  for b in range(3):
    n = mask[b].sum()
    np.testing.assert_allclose(mean[b], h[b, :n].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Pooling("last")(h, mask).numpy()[b], h[b, n - 1])
    np.testing.assert_allclose(Pooling("cls")(h, mask).numpy()[b], h[b, 0])
  with pytest.raises(ValueError, match="pooling must be one of"):
    Pooling("max")


def test_infonce_bce_matryoshka_match_numpy():
  rng = np.random.default_rng(1)
  b, h, d, t = 6, 2, 8, 0.1
  q, p = _unit(rng.normal(size=(b, d))), _unit(rng.normal(size=(b, d)))
  n = _unit(rng.normal(size=(b, h, d)))
  ids = np.array(["a", "b", "a", "c", "d", "e"])
  logits = np.concatenate([q @ p.T, np.einsum("bd,bhd->bh", q, n)], 1) / t
  for i in range(b):                      # same item elsewhere in the batch: masked
    for j in range(b):
      if i != j and ids[i] == ids[j]:
        logits[i, j] = -1e9
  want = -np.mean([_np_logsoftmax(logits)[i, i] for i in range(b)])
  f32 = lambda x: tf.constant(x, tf.float32)  # noqa: E731
  got = InfoNCELoss(t)(f32(q), f32(p), f32(n), tf.constant(ids)).numpy()
  np.testing.assert_allclose(got, want, rtol=1e-4)
  # BCE with its initial bias -5.
  z = logits - 5.0
  softplus = lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)  # noqa: E731
  pos = np.zeros_like(z, bool)
  pos[np.arange(b), np.arange(b)] = True
  valid = logits > -1e8
  want_bce = softplus(-z[pos]).mean() + softplus(z[~pos & valid]).mean()
  got_bce = BCELoss(t)(f32(q), f32(p), f32(n), tf.constant(ids)).numpy()
  np.testing.assert_allclose(got_bce, want_bce, rtol=1e-4)
  # Matryoshka: the base loss of each re-normalised prefix, averaged.
  qr, pr, nr = rng.normal(size=(b, d)), rng.normal(size=(b, d)), rng.normal(size=(b, h, d))
  base = InfoNCELoss(t)
  want_m = np.mean([base(f32(_unit(qr[:, :k])), f32(_unit(pr[:, :k])),
                         f32(_unit(nr[..., :k]))).numpy() for k in (8, 4, 2)])
  got_m = MatryoshkaLoss(base, (8, 4, 2))(f32(qr), f32(pr), f32(nr)).numpy()
  np.testing.assert_allclose(got_m, want_m, rtol=1e-5)
  with pytest.raises(ValueError, match="matryoshka dim 16"):
    MatryoshkaLoss(base, (16,))(f32(qr), f32(pr), f32(nr))


def _tower(seed, pooling="mean", causal=False, special=()):
  tf.keras.utils.set_random_seed(seed)
  tok = TextTokenizer(VOCAB, max_length=32, special_tokens=special)
  enc = BertEncoder(BertConfig.small(len(VOCAB), hidden_size=32, num_layers=1,
                                     num_heads=2, max_position=32, causal=causal))
  return TextTower(tok, enc, pooling=pooling)


def _pairs(n=256, seed=0):
  """Members who like one colour; items are '<colour> <animal>'."""
  rng = np.random.default_rng(seed)
  colours, animals = ["red", "green", "blue"], ["cat", "dog", "fish"]
  c = rng.integers(0, 3, n)
  a = rng.integers(0, 3, n)
  members = [f"watched : {colours[i]} {animals[rng.integers(0, 3)]}" for i in c]
  items = [f"{colours[i]} {animals[j]}" for i, j in zip(c, a)]
  hard = [[f"{colours[(i + 1) % 3]} {animals[j]}"] for i, j in zip(c, a)]
  return members, items, hard


@pytest.mark.parametrize("loss,pooling,shared", [("infonce", "mean", True),
                                                  ("bce", "last", False)])
def test_fit_loss_falls(loss, pooling, shared):
  members, items, hard = _pairs()
  member_tower = _tower(0, pooling, causal=pooling == "last")
  item_tower = None if shared else _tower(1, pooling, causal=pooling == "last")
  model = TextRetrievalModel(member_tower, item_tower, loss=loss, temperature=0.1,
                             matryoshka_dims=(32, 8))
  model.compile(tf.keras.optimizers.Adam(3e-3))
  ds = tf.data.Dataset.from_tensor_slices({
      "member_text": members, "item_text": items, "item_id": items,
      "hard_negatives": hard}).batch(32)
  before = model.evaluate(ds, verbose=0)
  hist = model.fit(ds, epochs=4, verbose=0).history["loss"]
  after = model.evaluate(ds, verbose=0)
  assert after < 0.7 * before, (before, hist, after)
  assert model.shared == shared


def test_tokenizer_special_tokens_and_truncation():
  tok = TextTokenizer(VOCAB, max_length=6, special_tokens=["<age_percentile>",
                                                            "</age_percentile>"])
  ids, mask = tok(tf.constant(["<age_percentile>7</age_percentile>", "red cat dog fish big small"]))
  u0, u1 = VOCAB.index("[unused0]"), VOCAB.index("[unused1]")
  idx = {w: i for i, w in enumerate(VOCAB)}
  np.testing.assert_array_equal(ids.numpy()[0], [2, u0, idx["7"], u1, 3, 0])
  np.testing.assert_array_equal(mask.numpy()[0], [1, 1, 1, 1, 1, 0])
  np.testing.assert_array_equal(ids.numpy()[1], [2] + [idx[w] for w in "red cat dog fish".split()] + [3])
  with pytest.raises(ValueError, match="special tokens"):
    TextTokenizer(VOCAB, special_tokens=[f"<t{i}>" for i in range(9)])


PROMPTS = PromptConfig.from_dict({
    "item": [{"name": "title", "kind": "text"}, {"name": "genres", "kind": "categorical"},
             {"name": "popularity", "kind": "numeric"}],
    "numbers": "percentile"})


def _catalogue(n=40, seed=3):
  rng = np.random.default_rng(seed)
  colours, animals = ["red", "green", "blue"], ["cat", "dog", "fish"]
  genres = ["action", "drama", "comedy"]
  return {
      "item_id": np.array([f"i{i}" for i in range(n)]),
      "title": np.array([f"{colours[i % 3]} {animals[(i // 3) % 3]}" for i in range(n)], object),
      "genres": np.array(["|".join(genres[j] for j in range(3) if (i >> j) & 1) or "drama"
                          for i in range(n)], object),
      "popularity": rng.integers(0, 500, n).astype(np.float32),
  }


@pytest.mark.parametrize("codes", [False, True])
def test_export_reload_query_and_upsert_from_text(tmp_path, codes):
  cat = _catalogue()
  buckets = PercentileBuckets.fit({"popularity": cat["popularity"]})
  prompt = ItemPrompt(PROMPTS, buckets)
  tower = _tower(2, special=PROMPTS.special_tokens())
  prefix = 16
  quantizer = SignOPORP(prefix, 64, seed=1) if codes else None
  index = text_export.build_index(tower, prompt, cat["item_id"], cat,
                                  {"genres": cat["genres"]}, prefix_dim=prefix,
                                  quantizer=quantizer)
  module = text_export.TextRetrievalModule(tower, tower, prompt, index, prefix_dim=prefix)
  path = save_module(module, str(tmp_path / "export"))
  loaded = text_export.load(path)
  if codes:
    assert "retrieve_codes" in loaded.signatures

  # Item embeddings in the index == the tower on the Python-built prompts.
  texts = build_item_prompts(PROMPTS, cat, buckets)
  item_emb = text_export.embed_texts(tower, texts, prefix)
  queries = ["watched : red cat", "watched : blue fish ; big"]
  q_emb = text_export.embed_texts(tower, queries, prefix)
  scores = q_emb @ item_emb.T
  out = loaded.signatures["retrieve_with_options"](
      member_text=tf.constant(queries), filter=tf.constant(["", 'genres = "action"']),
      k=tf.constant(5), strategy=tf.constant("auto"))
  ids = out["item_ids"].numpy().astype(str)
  got = out["scores"].numpy()
  has_action = np.array(["action" in g for g in cat["genres"]])
  for b, allowed in enumerate([np.ones(len(texts), bool), has_action]):
    s = np.where(allowed, scores[b], -np.inf)
    want = np.argsort(-s, kind="stable")[:5]
    np.testing.assert_allclose(got[b], s[want], rtol=1e-4, atol=1e-5)
    assert all(allowed[int(i[1:])] for i in ids[b])
    if not codes:   # exact: same items (ties aside)
      assert set(ids[b]) == set(cat["item_id"][want]) or np.isclose(got[b, -1], s[want][-1])

  # A cold item enters from its raw fields; its stored vector is the tower's.
  new = {"item_id": ["new1"], "title": ["green dog"], "genres": ["comedy|action"],
         "popularity": [499.0]}
  res = loaded.signatures["upsert_items"](
      item_id=tf.constant(new["item_id"]), version=tf.constant([1], tf.int64),
      title=tf.constant(new["title"]), genres=tf.constant(new["genres"]),
      popularity=tf.constant(new["popularity"], tf.float32))
  assert res["applied"].numpy().tolist() == [True]
  new_text = build_item_prompts(PROMPTS, new, buckets)[0]
  assert new_text == "green dog; genres: comedy, action; <popularity_percentile>100</popularity_percentile>"
  new_emb = text_export.embed_texts(tower, [new_text], prefix)
  out = loaded.signatures["retrieve_embeddings"](
      query_embedding=tf.constant(new_emb), filter=tf.constant(['genres = "comedy"']),
      k=tf.constant(1))
  assert out["item_ids"].numpy()[0, 0].decode() == "new1"
  np.testing.assert_allclose(out["scores"].numpy()[0, 0], 1.0, atol=1e-4)


def test_export_checks():
  cat = _catalogue()
  buckets = PercentileBuckets.fit({"popularity": cat["popularity"]})
  prompt = ItemPrompt(PROMPTS, buckets)
  tower = _tower(2)
  index = text_export.build_index(tower, prompt, cat["item_id"], cat,
                                  {"genres": cat["genres"]}, prefix_dim=8)
  with pytest.raises(ValueError, match="index dim 8"):
    text_export.TextRetrievalModule(tower, tower, prompt, index, prefix_dim=16)
  with pytest.raises(ValueError, match="prefix_dim must be in"):
    TextTower(tower.tokenizer, tower.encoder, prefix_dim=999)
