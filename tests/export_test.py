"""One SavedModel: reload equality, filters honoured, clear errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import linr_tf
from linr_tf import export as export_lib

FILTERS = ["", 'lang = "en" AND type IN ("post", "article")',
           'topic = "ai"', "country IN ('us','de') AND lang = en"]


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
  model, catalog, cfg = trained
  base = str(tmp_path_factory.mktemp("export"))
  path = export_lib.export(model, base)
  assert path == os.path.join(base, "1")
  assert export_lib.export(model, base) == os.path.join(base, "2")
  return path


def _call(fn, users, filters, k):
  return fn(user_id=tf.constant(users), filter=tf.constant(filters),
            k=tf.constant(k, tf.int32))


def test_reload_in_process_equals_model(trained, exported):
  model, catalog, cfg = trained
  fn = linr_tf.load(exported).signatures["serving_default"]
  users = ["u0", "u1", "u2", "u3"]
  out = _call(fn, users, FILTERS, 25)
  scores, ids, count = model.retrieve({"user_id": users}, FILTERS, 25)
  np.testing.assert_array_equal(out["item_ids"].numpy(), ids.numpy())
  np.testing.assert_allclose(out["scores"].numpy(), scores.numpy(), rtol=1e-6)
  np.testing.assert_array_equal(out["count"].numpy(), count.numpy())


def test_reload_in_fresh_process_equals_model(trained, exported, tmp_path):
  model, _, _ = trained
  script = (
      "import sys, numpy as np, linr_tf, tensorflow as tf\n"
      "fn = linr_tf.load(sys.argv[1]).signatures['serving_default']\n"
      "out = fn(user_id=tf.constant(['u5']), filter=tf.constant(['topic = \"ai\"']),"
      " k=tf.constant(7))\n"
      "np.save(sys.argv[2], out['scores'].numpy())\n"
      "print(' '.join(x.decode() for x in out['item_ids'].numpy()[0]))\n")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=repo)
  res = subprocess.run([sys.executable, "-c", script, exported,
                        str(tmp_path / "s.npy")], capture_output=True,
                       text=True, env=env, check=True, timeout=300)
  scores, ids, _ = model.retrieve({"user_id": ["u5"]}, ['topic = "ai"'], 7)
  assert res.stdout.split() == [x.decode() for x in ids[0].numpy()]
  np.testing.assert_allclose(np.load(tmp_path / "s.npy"), scores.numpy(),
                             rtol=1e-6)


def test_every_returned_item_satisfies_its_filter(trained, exported):
  model, catalog, cfg = trained
  fn = linr_tf.load(exported).signatures["serving_default"]
  row = {i: n for n, i in enumerate(catalog.ids)}
  out = _call(fn, ["u9"] * 3, FILTERS[1:], 50)
  checks = [
      lambda c, n: c["lang"][n] == "en" and c["type"][n] in ("post", "article"),
      lambda c, n: "ai" in c["topic"][n].split("|"),
      lambda c, n: c["country"][n] in ("us", "de") and c["lang"][n] == "en",
  ]
  for b, ok in enumerate(checks):
    n_ret = int(out["count"][b])
    eligible = sum(ok(catalog.columns, n) for n in range(len(catalog)))
    assert n_ret == min(50, eligible) and n_ret > 0
    for item in out["item_ids"][b, :n_ret].numpy():
      assert ok(catalog.columns, row[item.decode()])


def test_signature_shape_and_names(exported):
  fn = linr_tf.load(exported).signatures["serving_default"]
  inputs = fn.structured_input_signature[1]
  assert sorted(inputs) == ["filter", "k", "user_id"]
  assert sorted(fn.structured_outputs) == ["count", "item_ids", "scores"]


@pytest.mark.parametrize("filters,k,word", [
    ([""], 0, "k must be > 0"),
    ([""], -3, "k must be > 0"),
    ([""], 100000, "k must be <= 4096"),
    (['lang = "en" AND'], 5, "position"),
    (['langg = "en"'], 5, "unknown attribute 'langg'"),
    (['lang = "klingon"'], 5, "klingon"),
    (["", ""], 5, "one string per query"),
])
def test_bad_requests_are_invalid_argument(exported, filters, k, word):
  fn = linr_tf.load(exported).signatures["serving_default"]
  with pytest.raises(tf.errors.InvalidArgumentError, match=word):
    _call(fn, ["u1"], filters, k)


def test_wrong_dtype_and_unknown_input_are_rejected(exported):
  fn = linr_tf.load(exported).signatures["serving_default"]
  with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
    fn(user_id=tf.constant([1.5]), filter=tf.constant([""]), k=tf.constant(3))
  with pytest.raises(TypeError, match="usr"):
    fn(usr=tf.constant(["u1"]), filter=tf.constant([""]), k=tf.constant(3))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"user_id \[1,1\] is not compatible"):
    fn(user_id=tf.constant([["u1"]]), filter=tf.constant([""]),
       k=tf.constant(3))
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"k \[2\]"):
    fn(user_id=tf.constant(["u1"]), filter=tf.constant([""]),
       k=tf.constant([3, 4]))


def test_strategies_agree_and_bad_strategy_is_rejected(exported):
  fn = linr_tf.load(exported).signatures["retrieve_with_options"]
  users = ["u1", "u2", "u3", "u4"]
  outs = [fn(user_id=tf.constant(users), filter=tf.constant(FILTERS),
             k=tf.constant(30), strategy=tf.constant(s))
          for s in ("auto", "mask", "prefilter")]
  for out in outs[1:]:
    np.testing.assert_array_equal(out["item_ids"].numpy(),
                                  outs[0]["item_ids"].numpy())
    np.testing.assert_array_equal(out["count"].numpy(), outs[0]["count"].numpy())
    np.testing.assert_allclose(out["scores"].numpy(), outs[0]["scores"].numpy(),
                               rtol=1e-6)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="strategy must be one of auto, mask, prefilter"):
    fn(user_id=tf.constant(["u1"]), filter=tf.constant([""]), k=tf.constant(3),
       strategy=tf.constant("fastest"))
