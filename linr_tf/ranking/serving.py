"""The ranking signatures of the SavedModel (added by `export.RetrievalModule`
when the model has a `RankingHead`):

  * `retrieve_and_rank`: the query features, `filter` (tf.string [B]),
    `k_retrieve` and `k_final` (tf.int32 scalars, 1 <= k_final <= k_retrieve
    <= max_k) -> `item_ids` [B, k_final], `retrieval_scores`, `rank_scores`
    [B, k_final] (ordered by rank score) and `count` [B]; padding "" / -inf
    past `count`, as `serving_default`. One call: tower, filter, top-k,
    candidate features from the same snapshot, ranker, final top-k.
  * `update_rank_features`: `item_id`, `version`, `rank_dense` float32
    [B, F], `rank_ids` int64 [B, C] -> `applied`, `previous_version`
    (`ItemIndex.update_rank_features`).

    out = linr_tf.load(path).signatures["retrieve_and_rank"](
        user_id=tf.constant(["u1"]), filter=tf.constant([""]),
        k_retrieve=tf.constant(2000), k_final=tf.constant(50))
"""

import tensorflow as tf

from linr_tf.placement import HOST
from linr_tf.ranking.rank import retrieve_and_rank


def _retrieve_and_rank(module, inputs):
  features = {n: tf.ensure_shape(inputs[n], [None], name=f"check_{n}")
              for n in module.query_specs}
  filters = tf.ensure_shape(inputs["filter"], [None], name="check_filter")
  k_retrieve = tf.ensure_shape(inputs["k_retrieve"], [], name="check_k_retrieve")
  k_final = tf.ensure_shape(inputs["k_final"], [], name="check_k_final")
  batch = tf.shape(next(iter(features.values())))[0]
  checks = module._request_checks(filters, k_retrieve, batch)  # pylint: disable=protected-access
  with tf.device(HOST):
    checks.append(tf.debugging.assert_positive(k_final, message="k_final must be > 0"))
    checks.append(tf.debugging.assert_less_equal(
        k_final, k_retrieve, message="k_final must be <= k_retrieve"))
    for name, value in features.items():
      checks.append(tf.debugging.assert_equal(
          tf.shape(value)[0], batch, message=f"query feature '{name}' has a different batch size"))
  with tf.control_dependencies(checks):
    queries = module.query_tower(features)
    rank_queries = module.ranking(features)
  out = retrieve_and_rank(module.index, module.ranking.ranker, rank_queries, queries, filters,
                          k_retrieve, k_final)
  return out._asdict()


def _update_rank_features(module, inputs):
  result = module.index.update_rank_features(inputs["item_id"], inputs["version"],
                                             inputs.get("rank_dense"), inputs.get("rank_ids"))
  return {"applied": result.applied, "previous_version": result.previous_version}


def signatures(module, query_spec):
  """{name: concrete function} of the ranking signatures of `module`."""
  spec = dict(query_spec)
  spec["filter"] = tf.TensorSpec([None], tf.string, name="filter")
  spec["k_retrieve"] = tf.TensorSpec([], tf.int32, name="k_retrieve")
  spec["k_final"] = tf.TensorSpec([], tf.int32, name="k_final")
  out = {"retrieve_and_rank": tf.function(
      lambda **kw: _retrieve_and_rank(module, kw)).get_concrete_function(**spec)}
  if module.live:
    index = module.index
    update = {"item_id": tf.TensorSpec([None], tf.string, name="item_id"),
              "version": tf.TensorSpec([None], tf.int64, name="version"),
              **module.rank_specs()}
    out["update_rank_features"] = tf.function(
        lambda **kw: _update_rank_features(module, kw)).get_concrete_function(**update)
  return out
