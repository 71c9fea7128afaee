"""The searcher seam: one searcher per index config, the same top-k from the
fast export (custom ops) and the portable one (stock ops) for every config,
and the `strategy` input applied or refused with a clear error."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import conftest
import linr_tf
from linr_tf import export as export_lib
from linr_tf import export_portable
from linr_tf import search

# Filters the portable export supports (attr = v, IN, AND).
FILTERS = ["", 'lang = "en" AND type IN ("post", "article")', 'topic = "ai"',
           "country IN ('us','de') AND lang = en", "lang = de"]
INDEX_CONFIGS = {
    "float16": dict(vectors="float16"),
    "bfloat16": dict(vectors="bfloat16"),
    "codes_only": dict(vectors=None, code_bits=128),
    "codes_rerank_fp16": dict(vectors="float16", code_bits=128, rerank_factor=4),
}


@pytest.fixture(scope="module", params=sorted(INDEX_CONFIGS))
def exports(request, feed, tmp_path_factory):
  cfg, catalog, log, _ = feed
  cfg = dataclasses.replace(
      cfg, index=dataclasses.replace(cfg.index, **INDEX_CONFIGS[request.param]))
  model, _, _ = conftest.train_small(cfg, catalog, log)
  fast = export_lib.export(model, str(tmp_path_factory.mktemp("fast")))
  portable = export_portable.export_portable(model, str(tmp_path_factory.mktemp("port")))
  return request.param, model, fast, portable


_run = conftest.run_search


def test_searcher_is_chosen_once_from_the_config(exports):
  name, model, _, _ = exports
  expected = {"float16": search.ExactSearch, "bfloat16": search.ExactSearch,
              "codes_only": search.HammingSearch,
              "codes_rerank_fp16": search.RefineSearch}[name]
  assert type(model.index.searcher) is expected
  if name == "codes_rerank_fp16":
    assert isinstance(model.index.searcher.coarse, search.HammingSearch)
    assert model.index.searcher.rerank_factor == 4


@pytest.mark.parametrize("k", [1, 10, 300])
def test_portable_export_equals_fast_export(exports, k):
  _, _, fast_path, port_path = exports
  fast = linr_tf.load(fast_path).signatures["serving_default"]
  port = tf.saved_model.load(port_path).signatures["serving_default"]
  users = [f"u{i}" for i in range(len(FILTERS) * 2)]
  filters = FILTERS * 2
  a, b = _run(fast, users, filters, k), _run(port, users, filters, k)
  np.testing.assert_array_equal(a["count"], b["count"])
  np.testing.assert_array_equal(a["item_ids"], b["item_ids"])
  np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-5)
  assert (a["count"] > 0).all()


def test_strategy_is_applied_or_refused(exports):
  name, model, fast_path, port_path = exports
  for path, load in ((fast_path, linr_tf.load), (port_path, tf.saved_model.load)):
    sigs = load(path).signatures
    ref = _run(sigs["serving_default"], ["u1", "u2"], FILTERS[:2], 20)
    supported = model.index.searcher.strategies
    for strategy in ("auto", "mask", "prefilter"):
      call = lambda s=strategy: _run(sigs["retrieve_with_options"], ["u1", "u2"],
                                     FILTERS[:2], 20, strategy=tf.constant(s))
      if strategy in supported:
        out = call()
        np.testing.assert_array_equal(out["item_ids"], ref["item_ids"])
      else:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="strategy is not supported by .*supported: auto, mask"):
          call()
  if name.startswith("codes"):
    assert supported == ("auto", "mask")
    q = tf.zeros([1, model.index.dim])
    with pytest.raises(ValueError, match="'prefilter' is not supported by"):
      model.index(q, None, 5, strategy="prefilter")


def test_make_searcher_rejects_an_index_without_stores():
  with pytest.raises(ValueError, match="needs vectors, codes"):
    search.make_searcher(None, None)
  with pytest.raises(ValueError, match="rerank_factor must be >= 1"):
    search.make_searcher("float32", linr_tf.quantization.SignOPORP(8, 64), rerank_factor=0)
