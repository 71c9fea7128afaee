"""SavedModel of a `MoLIndex`: the serving signatures under the main export's
names (`linr_tf/export.py`), so clients call a MoL model like any other.

    path = export_mol(index, "out/mol/export", version=1)
    m = tf.saved_model.load(path)
    out = m.signatures["serving_default"](user_id=tf.constant(["u1"]),
                                          filter=tf.constant([""]), k=tf.constant(10))
    out["item_ids"], out["scores"], out["count"]
    m.signatures["upsert_items"](item_id=..., genre=..., year=..., version=...)

`serving_default`: the query features ([B] each), `filter` (tf.string [B])
and `k` (int32 scalar) -> `item_ids` [B, k], `scores` [B, k], `count` [B]
(padding "" / -inf). `upsert_items`: every item-tower feature and `version`
(int64 [B]); the filter attributes are read from the item features of the
same name (categorical cells) and encoded in-graph; returns `slots`.
"""

import os

import tensorflow as tf

from linr_tf.attributes import AttributeEncoder


class MoLModule(tf.Module):
  def __init__(self, index, max_k: int = 4096):
    super().__init__(name="mol_module")
    self.index = index
    self.model = index.model
    self.max_k = max_k
    self.encoder = AttributeEncoder(index.bit_keys, index.model.cfg.separator)
    self.filter_attributes = [a for a in index.model.cfg.filter_attributes]

  def retrieve(self, inputs):
    k = inputs.pop("k")
    filters = inputs.pop("filter")
    checks = [tf.debugging.assert_positive(k, message="k must be positive"),
              tf.debugging.assert_less_equal(k, self.max_k, message="k too large")]
    with tf.control_dependencies(checks):
      scores, ids, count = self.index.search(inputs, filters, k)
    return {"item_ids": ids, "scores": scores, "count": count}

  def upsert_items(self, inputs):
    version = inputs.pop("version")
    bits = self.encoder({a: inputs[a] for a in self.filter_attributes})
    slots = self.index.upsert(inputs[self.model.cfg.item_id_feature], inputs, bits, version)
    return {"slots": slots}

  def signatures(self):
    cfg = self.model.cfg
    query = {s.name: s.tensor_spec() for s in cfg.query_features}
    item = {s.name: s.tensor_spec() for s in cfg.item_features}
    serve = tf.function(lambda **kw: self.retrieve(dict(kw))).get_concrete_function(
        **query, filter=tf.TensorSpec([None], tf.string, name="filter"),
        k=tf.TensorSpec([], tf.int32, name="k"))
    upsert = tf.function(lambda **kw: self.upsert_items(dict(kw))).get_concrete_function(
        **item, version=tf.TensorSpec([None], tf.int64, name="version"))
    return {"serving_default": serve, "upsert_items": upsert}


def export_mol(index, base_path: str, version: int = 1) -> str:
  """Writes `<base_path>/<version>` and returns it."""
  module = MoLModule(index)
  path = os.path.join(base_path, str(version))
  tf.saved_model.save(module, path, signatures=module.signatures())
  return path
