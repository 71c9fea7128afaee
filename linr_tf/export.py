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

Live-update signatures (see `ItemIndex` for the version rule); each returns
`applied` (bool [B]) and `previous_version` (int64 [B], what the version was
compared with, -1 = none / unknown item), item ids unique per call:
  * `upsert_items`: `version` (int64 [B]) + every item-tower feature (the item
    id feature included): embedded by the item tower in-graph, attributes from
    the same columns — how cold-start items enter;
  * `upsert_embeddings`: `item_id`, `version`, `embedding` (float32 [B, dim])
    and one column per filter attribute;
  * `delete_items`: `item_id`, `version`;
  * `update_attributes`: `item_id`, `version` and the attribute columns.
Attribute columns are tf.string [B] (multi-valued cells joined by the config's
separator; bitset and value-id attributes) or float64 [B] for numeric
attributes (bucketed, or exact "number"/"float64"), int64 [B] for "int64"
attributes (in `upsert_items` a numeric attribute that is an item feature is
the tower's float32 input, bucketed or stored after that rounding; a filter
attribute that is no item feature is an input of its own). A value-id value
the index has never seen gets a new id in-graph (`ItemIndex.encode_columns`,
under the writer lock), so it is filterable right after the write.
Search signatures beside those: `retrieve_embeddings` (`query_embedding`
float32 [B, dim], `filter`, `k`) for query vectors computed elsewhere, and,
for an index with 1-bit codes, `retrieve_codes` (`query_codes` int32 [B, m/32],
`code_fingerprint` int64 = `SignOPORP.fingerprint` of the encoder, `filter`,
`k`; scores are matching bits, no rerank).

A Mixture-of-Logits model (a `mol` config section, `linr_tf.mol`) exports
the same signatures with [P, dim] queries (`query_embedding` [B, P, dim])
and [Q, dim] items (`embedding` [B, Q, dim]); with item clusters
`upsert_embeddings` also takes `cluster_id` (int32 [B], in [0, clusters)),
and `upsert_items` gives a cold item its nearest cluster in-graph.
"""

import os
import re

import tensorflow as tf

from linr_tf.attributes import AttributeEncoder
from linr_tf.model import RetrievalModel
from linr_tf.ops.topk_ops import STRATEGIES
from linr_tf.placement import HOST
from linr_tf.search import unsupported_strategy_message

MAX_K = 4096
UPDATE_INPUTS = ("item_id", "version", "embedding")


class RetrievalModule(tf.Module):
  """What the SavedModel holds: the query tower and the index."""

  def __init__(self, model: RetrievalModel, index=None, max_k: int = MAX_K,
               name: str = "linr_retrieval"):
    """`index`: what to serve (default `model.index`): anything with an
    `ItemIndex`'s search interface — `__call__(queries, filters, k, strategy)`,
    `dim`, `searcher` (its `strategies`) and `supports_updates` (then also the
    update methods and `search_codes`)."""
    super().__init__(name=name)
    self.query_tower = model.query_tower
    self.index = model.index if index is None else index
    self.max_k = max_k
    self.query_specs = {s.name: s.tensor_spec() for s in model.cfg.query_features}
    # Config, vocabularies and bit layout (JSON), for clients such as LiveIndex.
    self.metadata = tf.Variable(model.metadata(), trainable=False, name="metadata")
    self.live = bool(self.index.supports_updates)
    # The ranker (linr_tf/ranking/, a `JointModel`): adds `retrieve_and_rank`.
    self.ranking = getattr(model, "ranking", None)
    if self.live:
      cfg = model.cfg
      self.item_tower = model.item_tower
      self.item_id_feature = cfg.item_id_feature
      self.attribute_encoder = AttributeEncoder(model.schema.keys, cfg.separator)
      self.item_specs = {s.name: s.tensor_spec() for s in cfg.item_features}
      # Numeric attributes in float64: bucketed exactly as AttributeSchema.encode.
      numeric = cfg.numeric_attributes
      self.attribute_specs = {
          a: tf.TensorSpec([None], tf.float64 if a in numeric else tf.string, name=a)
          for a in self.attribute_encoder.attributes}
      # Column attributes: exact numbers (int64 or float64 [B]) and value ids
      # (tf.string [B], multi-valued cells joined by the separator).
      self.columns = model.columns
      self.separator = cfg.separator
      if self.columns is not None:
        for a, dtype in self.columns.numbers.items():
          self.attribute_specs[a] = tf.TensorSpec([None], tf.as_dtype(dtype), name=a)
        for a in self.columns.values:
          self.attribute_specs[a] = tf.TensorSpec([None], tf.string, name=a)
      clash = sorted((set(self.item_specs) | set(self.attribute_specs))
                     & {"version", "embedding"}
                     | set(self.attribute_specs) & {"item_id"})
      if clash:
        raise ValueError(f"feature/attribute name(s) {clash} clash with update "
                         f"signature inputs {UPDATE_INPUTS}")

  def retrieve(self, inputs, strategy=None):
    # Signature functions do not check shapes of what they are fed: do it here.
    features = {n: tf.ensure_shape(inputs[n], [None], name=f"check_{n}")
                for n in self.query_specs}
    filters = tf.ensure_shape(inputs["filter"], [None], name="check_filter")
    k = tf.ensure_shape(inputs["k"], [], name="check_k")
    first = next(iter(features.values()))
    batch = tf.shape(first)[0]
    checks = self._request_checks(filters, k, batch)
    with tf.device(HOST):
      for name, value in features.items():
        checks.append(tf.debugging.assert_equal(
            tf.shape(value)[0], batch,
            message=f"query feature '{name}' has a different batch size"))
    with tf.control_dependencies(checks):
      queries = self.query_tower(features)
    return self._search(queries, filters, k, strategy, checks)

  @property
  def _query_shape(self):
    """One query embedding: (dim,), or (P, dim) for a MoL index."""
    return tuple(getattr(self.index, "query_shape", (self.index.dim,)))

  @property
  def _item_shape(self):
    """One item embedding: (dim,), or (Q, dim) for a MoL index."""
    return tuple(getattr(self.index, "item_shape", (self.index.dim,)))

  def _request_checks(self, filters, k, batch):
    """Asserts shared by the search signatures: k range, one filter per query."""
    with tf.device(HOST):
      return [
          tf.debugging.assert_positive(k, message="k must be > 0"),
          tf.debugging.assert_less_equal(
              k, self.max_k, message=f"k must be <= {self.max_k}"),
          tf.debugging.assert_equal(
              tf.shape(filters)[0], batch,
              message="`filter` needs one string per query (\"\" = no filter)"),
      ]

  def _search(self, queries, filters, k, strategy=None, checks=()):
    """Index search after `checks` (and a check of `strategy`, when given:
    one of STRATEGIES that the index's searcher supports)."""
    checks = list(checks)
    supported = self.index.searcher.strategies
    if strategy is not None:
      strategy = tf.ensure_shape(strategy, [], name="check_strategy")
      with tf.device(HOST):
        checks.append(tf.debugging.assert_equal(
            tf.reduce_any(tf.equal(tf.constant(STRATEGIES), strategy)), True,
            message=f"strategy must be one of {', '.join(STRATEGIES)}"))
        is_supported = tf.equal(tf.constant(supported), strategy)
        with tf.control_dependencies(checks[-1:]):
          checks.append(tf.debugging.assert_equal(
              tf.reduce_any(is_supported), True,
              message=unsupported_strategy_message(self.index.searcher)))
    with tf.control_dependencies(checks):
      queries = tf.identity(queries)
    if strategy is None:
      scores, ids, count = self.index(queries, filters, k)
    else:
      branch = tf.argmax(tf.cast(is_supported, tf.int32), output_type=tf.int32)
      scores, ids, count = tf.switch_case(branch, [
          (lambda s=s: self.index(queries, filters, k, strategy=s))
          for s in supported])
    return {"item_ids": ids, "scores": scores, "count": count}

  def retrieve_embeddings(self, inputs):
    """Search with query embeddings computed elsewhere."""
    queries = tf.ensure_shape(inputs["query_embedding"], [None, *self._query_shape],
                              name="check_query_embedding")
    filters = tf.ensure_shape(inputs["filter"], [None], name="check_filter")
    k = tf.ensure_shape(inputs["k"], [], name="check_k")
    checks = self._request_checks(filters, k, tf.shape(queries)[0])
    with tf.device(HOST):   # the request is in host memory: no GPU round trip
      checks.append(tf.debugging.assert_all_finite(queries,
                                                   "query embeddings contain NaN or Inf"))
    return self._search(queries, filters, k, None, checks)

  def retrieve_codes(self, inputs):
    """Search with 1-bit query codes made by the same Sign-OPORP encoder."""
    filters = tf.ensure_shape(inputs["filter"], [None], name="check_filter")
    k = tf.ensure_shape(inputs["k"], [], name="check_k")
    codes = tf.ensure_shape(inputs["query_codes"], [None, None], name="check_query_codes")
    checks = self._request_checks(filters, k, tf.shape(codes)[0])
    with tf.control_dependencies(checks):
      scores, ids, count = self.index.search_codes(codes, inputs["code_fingerprint"],
                                                   filters, k)
    return {"item_ids": ids, "scores": scores, "count": count}

  def _attributes(self, inputs):
    """{"attributes": bitsets, and "numbers" / "value_ids" with column stores}
    of the attribute columns in `inputs` (new value ids added in-graph)."""
    columns = {a: tf.ensure_shape(inputs[a], [None], name=f"check_{a}")
               for a in self.attribute_specs}
    out = {"attributes": self.attribute_encoder(
        {a: columns[a] for a in self.attribute_encoder.attributes})}
    if self.columns is not None:
      out["numbers"], out["value_ids"] = self.index.encode_columns(
          {a: columns[a] for a in self.columns.attributes}, self.separator, grow=True)
    return out

  def rank_specs(self):
    """Inputs `rank_dense` float32 [B, F] / `rank_ids` int64 [B, C] of the
    index's ranking stores ({} without a ranker): the upserts write them with
    the item, `update_rank_features` replaces them."""
    out, layout = {}, getattr(self.index, "layout", None)
    for name, dtype in (("rank_dense", tf.float32), ("rank_ids", tf.int64)):
      field = layout.field(name) if layout is not None else None
      if field is not None:
        out[name] = tf.TensorSpec([None, field.row_shape[0]], dtype, name=name)
    return out

  def _rank_features(self, inputs):
    return {name: inputs[name] for name in self.rank_specs()}

  def upsert_items(self, inputs):
    features = {n: tf.ensure_shape(inputs[n], [None], name=f"check_{n}")
                for n in self.item_specs}
    embeddings, extra = self.item_tower(features), {}
    if isinstance(embeddings, dict):   # a MoL item tower: [B, Q, d] rows + cluster ids
      extra = {n: v for n, v in embeddings.items() if n != "embeddings"}
      embeddings = embeddings["embeddings"]
    return _write_outputs(self.index.upsert(
        features[self.item_id_feature], inputs["version"], embeddings,
        **self._attributes({**inputs, **features}), **self._rank_features(inputs), **extra))

  def upsert_embeddings(self, inputs):
    extra = {"cluster_ids": inputs["cluster_id"]} if "cluster_id" in inputs else {}
    return _write_outputs(self.index.upsert(
        inputs["item_id"], inputs["version"], inputs["embedding"],
        **self._attributes(inputs), **self._rank_features(inputs), **extra))

  def delete_items(self, inputs):
    return _write_outputs(self.index.delete(inputs["item_id"], inputs["version"]))

  def update_attributes(self, inputs):
    return _write_outputs(self.index.update_attributes(
        inputs["item_id"], inputs["version"], **self._attributes(inputs)))

  def signatures(self):
    """`serving_default` (automatic strategy), `retrieve_with_options` and,
    for an index that supports updates, `retrieve_embeddings`, `retrieve_codes`
    (with codes) and the live-update signatures."""
    spec = dict(self.query_specs)
    spec["filter"] = tf.TensorSpec([None], tf.string, name="filter")
    spec["k"] = tf.TensorSpec([], tf.int32, name="k")
    default = tf.function(lambda **kw: self.retrieve(kw))
    with_options = tf.function(
        lambda strategy, **kw: self.retrieve(kw, strategy))
    out = {
        "serving_default": default.get_concrete_function(**spec),
        "retrieve_with_options": with_options.get_concrete_function(
            strategy=tf.TensorSpec([], tf.string, name="strategy"), **spec),
    }
    if self.ranking is not None:
      from linr_tf.ranking import serving as ranking_serving  # pylint: disable=g-import-not-at-top
      out.update(ranking_serving.signatures(self, self.query_specs))
    if not self.live:
      return out
    key = {"item_id": tf.TensorSpec([None], tf.string, name="item_id"),
           "version": tf.TensorSpec([None], tf.int64, name="version")}
    embedding = tf.TensorSpec([None, *self._item_shape], tf.float32, name="embedding")
    # A MoL index with clusters: upsert_embeddings takes each item's cluster id.
    cluster = ({"cluster_id": tf.TensorSpec([None], tf.int32, name="cluster_id")}
               if getattr(self.index, "num_clusters", 0) else {})
    updates = {
        # Filter attributes that are no item feature (a `company` column) are
        # inputs of their own.
        # With a ranker, the upserts also take the item's ranking features.
        "upsert_items": (self.upsert_items,
                         {**{a: v for a, v in self.attribute_specs.items()
                             if a not in self.item_specs},
                          **self.item_specs, "version": key["version"], **self.rank_specs()}),
        "upsert_embeddings": (self.upsert_embeddings,
                              {**key, "embedding": embedding, **self.attribute_specs,
                               **self.rank_specs(), **cluster}),
        "delete_items": (self.delete_items, key),
        "update_attributes": (self.update_attributes, {**key, **self.attribute_specs}),
    }
    updates["retrieve_embeddings"] = (self.retrieve_embeddings, {
        "query_embedding": tf.TensorSpec([None, *self._query_shape], tf.float32,
                                         name="query_embedding"),
        "filter": spec["filter"], "k": spec["k"]})
    if self.index.codes is not None:
      updates["retrieve_codes"] = (self.retrieve_codes, {
          "query_codes": tf.TensorSpec([None, None], tf.int32, name="query_codes"),
          "code_fingerprint": tf.TensorSpec([], tf.int64, name="code_fingerprint"),
          "filter": spec["filter"], "k": spec["k"]})
    for name, (method, specs) in updates.items():
      out[name] = tf.function(_keyword_call(method)).get_concrete_function(**specs)
    return out


def _write_outputs(result):
  """Signature outputs of an index write (`ItemIndex.WriteResult`)."""
  return {"applied": result.applied, "previous_version": result.previous_version}


def _keyword_call(method):
  """`method(dict)` as a function of keyword arguments (signature inputs)."""
  return lambda **kw: method(kw)


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
