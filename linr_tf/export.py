"""One SavedModel: query tower weights + the item index + the retrieve signature.

    path = export(model, "out/demo/export")      # -> out/demo/export/1
    loaded = linr_tf.load(path)
    out = loaded.signatures["serving_default"](
        user_id=tf.constant(["u1"]), filter=tf.constant([""]), k=tf.constant(10))
    out["item_ids"], out["scores"], out["count"]

The layout is TF Serving's: a base path with numeric version directories.
Signature `serving_default`: inputs are the query features (one per configured
query feature, [B]), `filter` (tf.string [B], "" = no filter) and `k`
(tf.int32 scalar); outputs `item_ids` [B, k], `scores` [B, k], `count` [B].
Slots past `count` are padding: id "" and score -inf.
Signature `retrieve_with_options` adds `strategy` (tf.string scalar: "auto",
"mask" for similarity masking, or "prefilter" for explicit pre-filtering).
"""

import os
import re

import tensorflow as tf

from linr_tf.model import RetrievalModel

MAX_K = 4096
STRATEGIES = ("auto", "mask", "prefilter")


class RetrievalModule(tf.Module):
  """What the SavedModel holds: the query tower and the index."""

  def __init__(self, model: RetrievalModel, index=None, max_k: int = MAX_K,
               name: str = "linr_retrieval"):
    """`index`: the searcher to serve (default `model.index`, custom ops)."""
    super().__init__(name=name)
    self.query_tower = model.query_tower
    self.index = model.index if index is None else index
    self.max_k = max_k
    self.query_specs = {
        s.name: tf.TensorSpec([None], tf.float32 if s.type == "numeric"
                              else tf.string, name=s.name)
        for s in model.cfg.query_features}
    self.metadata = tf.constant(model.metadata())

  def retrieve(self, inputs, strategy=None):
    # Signature functions do not check shapes of what they are fed: do it here.
    features = {n: tf.ensure_shape(inputs[n], [None], name=f"check_{n}")
                for n in self.query_specs}
    filters = tf.ensure_shape(inputs["filter"], [None], name="check_filter")
    k = tf.ensure_shape(inputs["k"], [], name="check_k")
    first = next(iter(features.values()))
    batch = tf.shape(first)[0]
    checks = [
        tf.debugging.assert_positive(k, message="k must be > 0"),
        tf.debugging.assert_less_equal(
            k, self.max_k, message=f"k must be <= {self.max_k}"),
        tf.debugging.assert_equal(
            tf.shape(filters)[0], batch,
            message="`filter` needs one string per query (\"\" = no filter)"),
    ]
    for name, value in features.items():
      checks.append(tf.debugging.assert_equal(
          tf.shape(value)[0], batch,
          message=f"query feature '{name}' has a different batch size"))
    if strategy is not None:
      strategy = tf.ensure_shape(strategy, [], name="check_strategy")
      is_known = tf.equal(tf.constant(STRATEGIES), strategy)
      checks.append(tf.debugging.assert_equal(
          tf.reduce_any(is_known), True,
          message=f"strategy must be one of {', '.join(STRATEGIES)}"))
    with tf.control_dependencies(checks):
      queries = self.query_tower(features)
    if strategy is None:
      scores, ids, count = self.index(queries, filters, k)
    else:
      branch = tf.argmax(tf.cast(is_known, tf.int32), output_type=tf.int32)
      scores, ids, count = tf.switch_case(branch, [
          (lambda s=s: self.index(queries, filters, k, strategy=s))
          for s in STRATEGIES])
    return {"item_ids": ids, "scores": scores, "count": count}

  def signatures(self):
    """`serving_default` (automatic strategy) and `retrieve_with_options`."""
    spec = dict(self.query_specs)
    spec["filter"] = tf.TensorSpec([None], tf.string, name="filter")
    spec["k"] = tf.TensorSpec([], tf.int32, name="k")
    default = tf.function(lambda **kw: self.retrieve(kw))
    with_options = tf.function(
        lambda strategy, **kw: self.retrieve(kw, strategy))
    return {
        "serving_default": default.get_concrete_function(**spec),
        "retrieve_with_options": with_options.get_concrete_function(
            strategy=tf.TensorSpec([], tf.string, name="strategy"), **spec),
    }


def next_version(base_path: str) -> int:
  versions = [int(d) for d in (os.listdir(base_path)
                               if os.path.isdir(base_path) else [])
              if re.fullmatch(r"\d+", d)]
  return max(versions, default=0) + 1


def save_module(module: RetrievalModule, base_path: str, version: int = None
                ) -> str:
  """Writes `<base_path>/<version>` (next free version if None); returns it."""
  version = next_version(base_path) if version is None else int(version)
  path = os.path.join(base_path, str(version))
  if os.path.exists(path):
    raise ValueError(f"export version {version} already exists at {path}")
  tf.saved_model.save(module, path, signatures=module.signatures())
  return path


def export(model: RetrievalModel, base_path: str, version: int = None) -> str:
  """The fast SavedModel (custom ops) at `<base_path>/<version>`."""
  return save_module(RetrievalModule(model), base_path, version)
