"""Portable export (stock TF ops only) returns the same top-k as the fast one,
and loads in a process that never registers the LiNR op library."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import conftest
import linr_tf
from linr_tf import export as export_lib
from linr_tf import export_portable

FILTERS = ["", 'lang = "en" AND type IN ("post", "article")', 'topic = "ai"',
           "country IN ('us','de') AND lang = en", "  ",
           "lang = en and type in (post)", 'topic IN ("ai", food) AND lang=de']
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def paths(trained, tmp_path_factory):
  model, _, _ = trained
  fast = export_lib.export(model, str(tmp_path_factory.mktemp("fast")))
  portable = export_portable.export_portable(
      model, str(tmp_path_factory.mktemp("portable")))
  return fast, portable


_run = conftest.run_search


@pytest.mark.parametrize("k", [1, 10, 100, 5000 // 5])
def test_same_top_k_as_fast_export(paths, k):
  fast = linr_tf.load(paths[0]).signatures["serving_default"]
  port = tf.saved_model.load(paths[1]).signatures["serving_default"]
  users = [f"u{i}" for i in range(len(FILTERS) * 3)]
  filters = FILTERS * 3
  a, b = _run(fast, users, filters, k), _run(port, users, filters, k)
  np.testing.assert_array_equal(a["count"], b["count"])
  np.testing.assert_array_equal(a["item_ids"], b["item_ids"])
  np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-6)
  assert (a["count"] > 0).all()


def test_retrieve_with_options_and_same_signature(paths):
  fast = linr_tf.load(paths[0])
  port = tf.saved_model.load(paths[1])
  # The portable export serves the search signatures; live updates need the
  # custom-op index.
  assert sorted(port.signatures) == ["retrieve_with_options", "serving_default"]
  assert {"upsert_items", "delete_items", "update_attributes"} <= set(fast.signatures)
  for name in port.signatures:
    assert (fast.signatures[name].structured_input_signature ==
            port.signatures[name].structured_input_signature)
  out = _run(port.signatures["retrieve_with_options"], ["u1"], ["topic = ai"],
             5, strategy=tf.constant("mask"))
  ref = _run(fast.signatures["serving_default"], ["u1"], ["topic = ai"], 5)
  np.testing.assert_array_equal(out["item_ids"], ref["item_ids"])
  with pytest.raises(tf.errors.InvalidArgumentError, match="strategy"):
    _run(port.signatures["retrieve_with_options"], ["u1"], [""], 5,
         strategy=tf.constant("fastest"))


@pytest.mark.parametrize("text,word", [
    ('lang = "en" AND', "not supported by the portable export"),
    ("lang = en OR lang = de", "not supported by the portable export"),
    ("lang != en", "not supported by the portable export"),
    ('lang = "en', "not supported by the portable export"),
    ("topic IN ()", "not supported by the portable export"),
    ("langg = en", "unknown attribute"),
    ("lang = klingon", "unknown value"),
])
def test_bad_filters_are_invalid_argument(paths, text, word):
  port = tf.saved_model.load(paths[1]).signatures["serving_default"]
  with pytest.raises(tf.errors.InvalidArgumentError, match=word):
    _run(port, ["u1"], [text], 3)
  with pytest.raises(tf.errors.InvalidArgumentError, match="k must be"):
    _run(port, ["u1"], [""], 0)


def test_loads_without_the_op_library(paths, tmp_path):
  """A fresh process that imports only TensorFlow (never linr_tf)."""
  script = (
      "import json, sys, tensorflow as tf\n"
      "m = tf.saved_model.load(sys.argv[1])\n"
      "fn = m.signatures['serving_default']\n"
      "out = fn(user_id=tf.constant(['u1', 'u2']), filter=tf.constant("
      "['topic = \"ai\"', 'lang = en AND type IN (post, video)']), "
      "k=tf.constant(8))\n"
      "assert 'linr_tf' not in sys.modules\n"
      "print(json.dumps({'ids': [[x.decode() for x in r] for r in "
      "out['item_ids'].numpy()], 'count': out['count'].numpy().tolist()}))\n")
  env = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "LINR_TF_OPS_LIBRARY")}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  res = subprocess.run([sys.executable, "-c", script, paths[1]],
                       capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=300)
  assert res.returncode == 0, res.stderr[-3000:]
  got = json.loads(res.stdout.strip().splitlines()[-1])
  fast = linr_tf.load(paths[0]).signatures["serving_default"]
  ref = _run(fast, ["u1", "u2"],
             ['topic = "ai"', "lang = en AND type IN (post, video)"], 8)
  assert got["ids"] == [[x.decode() for x in r] for r in ref["item_ids"]]
  assert got["count"] == ref["count"].tolist()


def test_graph_holds_no_custom_op(paths):
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  sm = saved_model_pb2.SavedModel()
  with open(os.path.join(paths[1], "saved_model.pb"), "rb") as f:
    sm.ParseFromString(f.read())
  graph = sm.meta_graphs[0].graph_def
  ops = {n.op for n in graph.node}
  for fn in graph.library.function:
    ops.update(n.op for n in fn.node_def)
  assert not [o for o in ops if o.startswith("Linr")], ops
