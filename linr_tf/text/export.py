"""Text retrieval in one SavedModel: the towers, the prompt layer and the
existing `ItemIndex`, served by the existing `RetrievalModule` signatures.

    index = build_index(item_tower, prompt, ids, item_columns, attributes,
                        prefix_dim=64)                 # ItemIndex of text embeddings
    module = TextRetrievalModule(member_tower, item_tower, prompt, index,
                                 prefix_dim=64)
    path = save_module(module, "out/text/export")
    loaded = load(path)                                # registers tensorflow-text ops
    loaded.signatures["serving_default"](
        member_text=tf.constant(["age: 25; watched: Heat"]),
        filter=tf.constant(['genres = "Crime"']), k=tf.constant(10))
    loaded.signatures["upsert_items"](                  # a cold item, from its fields
        item_id=tf.constant(["m9"]), version=tf.constant([1], tf.int64),
        title=tf.constant(["New film (2026)"]), genres=tf.constant(["Drama"]), ...)

`serving_default` / `retrieve_with_options` take `member_text` (the member's
prompt, a plain string) with `filter` and `k`; `upsert_items` takes `item_id`,
`version` and the raw item fields of the prompt (numbers as float32): the
prompt (percentile buckets from the boundaries stored in the model), its
tokens and its embedding are computed in-graph, and the categorical filter
attributes come from the same columns (or are inputs of their own). The other
signatures (`upsert_embeddings`, `delete_items`, `update_attributes`,
`retrieve_embeddings`, `retrieve_codes` with 1-bit codes) are unchanged.
Embeddings are the first `prefix_dim` dimensions (a Matryoshka prefix),
re-normalised, on both sides.
"""

import json
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from linr_tf.attributes import AttributeEncoder, AttributeSchema
from linr_tf.export import MAX_K, RetrievalModule, save_module  # noqa: F401
from linr_tf.index.item_index import ItemIndex
from linr_tf.text.tower import normalize_prefix

MEMBER_TEXT = "member_text"


class _QueryTower(tf.Module):
  """{member_text: [B]} -> prefix embeddings."""

  def __init__(self, tower, prefix_dim):
    super().__init__(name="member_query")
    self.tower, self.prefix_dim = tower, prefix_dim

  def __call__(self, features):
    return normalize_prefix(self.tower.encode(features[MEMBER_TEXT]), self.prefix_dim)


class _ItemTower(tf.Module):
  """{item fields: [B]} -> prompt -> prefix embeddings."""

  def __init__(self, prompt, tower, prefix_dim):
    super().__init__(name="item_from_fields")
    self.prompt, self.tower, self.prefix_dim = prompt, tower, prefix_dim

  def __call__(self, features):
    return normalize_prefix(self.tower.encode(self.prompt(features)), self.prefix_dim)


def embed_texts(tower, texts: Sequence[str], prefix_dim: Optional[int] = None,
                batch_size: int = 256) -> np.ndarray:
  """Prefix embeddings [N, dim] of `texts` through `tower` (a graph function)."""
  fn = tf.function(lambda t: normalize_prefix(tower.encode(t), prefix_dim),
                   input_signature=[tf.TensorSpec([None], tf.string)])
  out = [fn(tf.constant(list(texts[i:i + batch_size]))).numpy()
         for i in range(0, len(texts), batch_size)]
  dim = prefix_dim or tower.full_dim
  return np.concatenate(out) if out else np.zeros([0, dim], np.float32)


def build_index(item_tower, prompt, ids: Sequence[str], item_columns: Mapping,
                attributes: Mapping[str, Sequence[str]],
                prefix_dim: Optional[int] = None, quantizer=None,
                separator: str = "|", batch_size: int = 256) -> ItemIndex:
  """An `ItemIndex` of the items' text embeddings (prompts built by `prompt`,
  an `ItemPrompt`, from `item_columns`), with categorical filter attributes."""
  schema = AttributeSchema.from_columns(
      {a: np.asarray(v, object) for a, v in attributes.items()}, separator=separator)
  texts = prompt({k: tf.constant(np.asarray(v, np.float32 if f.kind == "numeric"
                                            else object))
                  for f in prompt.cfg.item for k, v in [(f.name, item_columns[f.name])]}
                 ).numpy()
  emb = embed_texts(item_tower, texts, prefix_dim, batch_size)
  index = ItemIndex(emb.shape[1], schema.keys, capacity=max(len(ids), 1),
                    quantizer=quantizer)
  index.assign(np.asarray(ids, str), emb,
               schema.encode({a: np.asarray(v, object) for a, v in attributes.items()},
                             separator))
  return index


class TextRetrievalModule(RetrievalModule):
  """`RetrievalModule` whose towers read text: member prompts and item fields."""

  def __init__(self, member_tower, item_tower, prompt, index: ItemIndex,
               prefix_dim: Optional[int] = None, separator: str = "|",
               metadata: Optional[dict] = None, max_k: int = MAX_K,
               name: str = "linr_text_retrieval"):
    tf.Module.__init__(self, name=name)
    if index.dim != (prefix_dim or item_tower.full_dim):
      raise ValueError(f"index dim {index.dim} != served prefix "
                       f"{prefix_dim or item_tower.full_dim}")
    self.query_tower = _QueryTower(member_tower, prefix_dim)
    self.item_tower = _ItemTower(prompt, item_tower, prefix_dim)
    self.index = index
    self.max_k = max_k
    self.query_specs = {MEMBER_TEXT: tf.TensorSpec([None], tf.string, name=MEMBER_TEXT)}
    meta = dict(metadata or {}, prefix_dim=prefix_dim, prompts=_prompt_meta(prompt))
    self.metadata = tf.Variable(json.dumps(meta), trainable=False, name="metadata")
    self.live = bool(index.supports_updates)
    self.ranking = None      # no second-stage ranker (RetrievalModule's option)
    self.item_id_feature = "item_id"
    self.item_specs = {"item_id": tf.TensorSpec([None], tf.string, name="item_id"),
                       **prompt.input_specs()}
    self.attribute_encoder = AttributeEncoder(_bit_keys(index), separator)
    numeric = [a for a in self.attribute_encoder.schema.numeric_attributes]
    if numeric:
      raise ValueError(f"text export supports categorical filter attributes only, got "
                       f"numeric {numeric}")
    self.attribute_specs = {a: tf.TensorSpec([None], tf.string, name=a)
                            for a in self.attribute_encoder.attributes}
    for a in self.attribute_specs:
      if a in self.item_specs and self.item_specs[a].dtype != tf.string:
        raise ValueError(f"attribute '{a}' is a numeric prompt field")
    self.columns = None
    self.separator = separator


def _bit_keys(index) -> list:
  keys = index.bit_keys
  keys = keys.numpy() if hasattr(keys, "numpy") else np.asarray(keys)
  return [k.decode() if isinstance(k, bytes) else str(k) for k in keys]


def _prompt_meta(prompt) -> dict:
  cfg = prompt.cfg
  return {"item": [f.__dict__ for f in cfg.item], "member": [f.__dict__ for f in cfg.member],
          "numbers": cfg.numbers, "separator": cfg.separator,
          "percentiles": prompt.buckets.to_dict() if prompt.buckets else {}}


def load(path: str):
  """Loads a text SavedModel (tensorflow-text ops and the LiNR ops registered)."""
  import tensorflow_text  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  import linr_tf  # pylint: disable=g-import-not-at-top
  return linr_tf.load(path)
