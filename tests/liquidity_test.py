"""Pre-filtering keeps the result list full where post-filtering starves it.

Post-filtering (top-k first, then drop what fails the filter) returns about
pass-rate x k items; pre-filtering returns exactly min(k, eligible), and both
agree with a brute-force filtered ranking.
"""

import itertools

import numpy as np
import tensorflow as tf

import reference


def _one_percent_filter(columns, n):
  for lang, kind, country in itertools.product(
      sorted(set(columns["lang"])), sorted(set(columns["type"])),
      sorted(set(columns["country"]))):
    spec = [("lang", [lang]), ("type", [kind]), ("country", [country])]
    rate = reference.passes(columns, spec).mean()
    if 0.005 <= rate <= 0.015:
      return spec
  raise AssertionError("no ~1% filter in the demo data")


def test_prefilter_returns_min_k_eligible_postfilter_starves(trained):
  model, catalog, _ = trained
  k = 100
  spec = _one_percent_filter(catalog.columns, len(catalog))
  mask = reference.passes(catalog.columns, spec)
  eligible = int(mask.sum())
  users = [f"u{i}" for i in range(20)]
  q = model.query_tower({"user_id": tf.constant(users)}).numpy()
  items = model.index.vectors.numpy()
  row = {i: n for n, i in enumerate(catalog.ids)}

  _, pre_ids, pre_count = model.index(q, tf.constant(
      [reference.filter_text(spec)] * len(users)), k)
  _, all_ids, _ = model.index(q, None, k)

  post_counts = []
  for b in range(len(users)):
    _, ref_pos = reference.top_k(q[b], items, mask, k)
    ref = [catalog.ids[p] for p in ref_pos]
    # Pre-filtering: exactly min(k, eligible), the exact filtered ranking.
    n = int(pre_count[b])
    assert n == min(k, eligible)
    assert [x.decode() for x in pre_ids[b, :n].numpy()] == ref
    # Post-filtering: what survives of the unfiltered top-k.
    survivors = [x.decode() for x in all_ids[b].numpy() if mask[row[x.decode()]]]
    assert survivors == ref[:len(survivors)]      # right items, too few
    post_counts.append(len(survivors))
  # ~1% of k on average: far fewer than the eligible items pre-filtering returns.
  assert np.mean(post_counts) < 0.25 * min(k, eligible), post_counts
