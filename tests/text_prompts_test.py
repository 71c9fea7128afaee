"""Prompt builders and percentile bucketing against hand-written references;
the in-graph item prompt equals the Python builder."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.text import (ItemPrompt, PercentileBuckets, PromptConfig,  # noqa: E402
                          build_item_prompts, build_member_prompt)

CFG = {
    "item": [{"name": "title", "kind": "text"},
             {"name": "genres", "kind": "categorical"},
             {"name": "year", "kind": "numeric"},
             {"name": "rating", "kind": "numeric", "label": "avg_rating"}],
    "member": [{"name": "age", "kind": "numeric"},
               {"name": "occupation", "kind": "categorical", "label": "job"}],
    "history_budget": 10,
}


def _reference_bucket(train, x):
  """1 + the number of the 1st..99th percentiles of `train` that are <= x."""
  qs = [np.quantile(np.asarray(train, np.float64), j / 100) for j in range(1, 100)]
  return 1 + sum(1 for q in qs if q <= x)


def test_percentile_buckets_reference_and_uniform():
  rng = np.random.default_rng(0)
  train = rng.lognormal(size=10_000)
  b = PercentileBuckets.fit({"pop": train})
  probe = np.concatenate([rng.lognormal(size=50), [0.0, 1e9, train.min(), train.max()]])
  got = b.bucket("pop", probe)
  assert [int(g) for g in got] == [_reference_bucket(train, x) for x in probe]
  assert got.min() >= 1 and got.max() <= 100
  # On the training catalogue every bucket holds ~1 % of the items.
  counts = np.bincount(b.bucket("pop", train), minlength=101)[1:]
  assert counts.min() >= 95 and counts.max() <= 105, counts
  assert b.bucket("pop", [0.0])[0] == 1 and b.bucket("pop", [1e9])[0] == 100
  with pytest.raises(KeyError, match="no percentile boundaries for 'x'"):
    b.bucket("x", [1.0])
  with pytest.raises(ValueError, match="finite"):
    PercentileBuckets.fit({"pop": [1.0, np.nan]})


def _items():
  return {"title": ["Heat (1995)", "Toy Story (1995)", "Old film"],
          "genres": ["Action|Crime", "Animation|Children's|Comedy", ""],
          "year": [1995.0, 1995.0, 1931.0], "rating": [4.25, 3.5, 2.0]}


def test_item_prompts_percentile_and_raw():
  cfg = PromptConfig.from_dict(CFG)
  items = _items()
  train = {"year": np.arange(1900, 2000, dtype=np.float64),
           "rating": np.linspace(1, 5, 1000)}
  b = PercentileBuckets.fit(train)
  got = build_item_prompts(cfg, items, b)
  yb = [_reference_bucket(train["year"], y) for y in items["year"]]
  rb = [_reference_bucket(train["rating"], r) for r in items["rating"]]
  assert got[0] == (f"Heat (1995); genres: Action, Crime; <year_percentile>{yb[0]}"
                    f"</year_percentile>; <avg_rating_percentile>{rb[0]}</avg_rating_percentile>")
  assert got[2].startswith("Old film; genres: ; <year_percentile>32</year_percentile>")
  assert cfg.special_tokens() == ["<year_percentile>", "</year_percentile>",
                                  "<avg_rating_percentile>", "</avg_rating_percentile>",
                                  "<age_percentile>", "</age_percentile>"]
  raw = cfg.replace(numbers="raw")
  assert build_item_prompts(raw, items)[1] == ("Toy Story (1995); genres: Animation, "
                                               "Children's, Comedy; year: 1995.0; avg_rating: 3.5")
  assert raw.special_tokens() == []
  # Field order is the configured one.
  swapped = cfg.replace(item=cfg.item[::-1], numbers="raw")
  assert build_item_prompts(swapped, items)[0].startswith("avg_rating: 4.2; year: 1995.0")
  # The in-graph layer builds the same strings, in both modes.
  for c, buckets in ((cfg, b), (raw, None)):
    layer = ItemPrompt(c, buckets)
    cols = {k: tf.constant(v, tf.float32 if k in ("year", "rating") else tf.string)
            for k, v in items.items()}
    assert [s.decode() for s in layer(cols).numpy()] == build_item_prompts(c, items, buckets)
    graph = tf.function(layer, input_signature=[layer.input_specs()])
    assert [s.decode() for s in graph(cols).numpy()] == build_item_prompts(c, items, buckets)


def test_member_prompt_engaged_newest_first_within_budget():
  cfg = PromptConfig.from_dict(CFG)
  b = PercentileBuckets.fit({"age": np.arange(10, 110, dtype=np.float64)})
  history = ["Heat", "Toy Story", "Casino", "Alien"]      # newest first
  tokens = [3, 4, 5, 2]
  got = build_member_prompt(cfg, {"age": 35.0, "occupation": "writer"}, history, tokens, b,
                            engaged=[True, False, True, True])
  # Toy Story not engaged; Heat (3) + Casino (5) = 8 <= 10; + Alien (2) = 10 <= 10.
  assert got == ("<age_percentile>26</age_percentile>; job: writer; "
                 "watched: Heat | Casino | Alien")
  tight = cfg.replace(history_budget=7)
  got = build_member_prompt(tight, {"age": 35.0, "occupation": "writer"}, history, tokens, b)
  assert got.endswith("watched: Heat | Toy Story")       # 3 + 4; Casino would pass 7
  none = cfg.replace(history_budget=0)
  assert build_member_prompt(none, {"age": 35.0, "occupation": "x"}, history, tokens,
                             b) == "<age_percentile>26</age_percentile>; job: x"


def test_config_errors():
  with pytest.raises(ValueError, match="kind must be one of"):
    PromptConfig.from_dict({"item": [{"name": "t", "kind": "image"}]})
  with pytest.raises(ValueError, match="numbers must be one of"):
    PromptConfig.from_dict({**CFG, "numbers": "log"})
  with pytest.raises(ValueError, match="unknown key"):
    PromptConfig.from_dict({**CFG, "budget": 3})
  with pytest.raises(ValueError, match="duplicate field"):
    PromptConfig.from_dict({"item": [{"name": "t", "kind": "text"}] * 2})
  cfg = PromptConfig.from_dict(CFG)
  with pytest.raises(ValueError, match="missing from the input columns"):
    build_item_prompts(cfg, {"title": ["a"]}, None)
  with pytest.raises(ValueError, match="need fitted PercentileBuckets"):
    build_item_prompts(cfg, _items(), None)
  with pytest.raises(ValueError, match="no percentile boundaries for 'year'"):
    ItemPrompt(cfg, PercentileBuckets.fit({"rating": [1.0, 2.0]}))
