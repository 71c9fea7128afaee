"""Prompt builders: item and member fields -> one text per item / member.

    cfg = PromptConfig.from_dict({
        "item": [{"name": "title", "kind": "text"},
                 {"name": "genres", "kind": "categorical"},
                 {"name": "popularity", "kind": "numeric"}],
        "member": [{"name": "age", "kind": "numeric"}],
        "numbers": "percentile", "history_budget": 64})
    buckets = PercentileBuckets.fit({"popularity": np.arange(1000.0)})
    build_item_prompts(cfg, {"title": ["Heat"], "genres": ["Action|Crime"],
                             "popularity": [990.0]}, buckets)
    # -> ["Heat; genres: Action, Crime; <popularity_percentile>100</popularity_percentile>"]

What is configured, not hard-coded: the fields of each side and their order,
each field's kind (`text`: the value itself; `categorical`: "label: a, b";
`numeric`: a percentile bucket 1-100 wrapped in `<name_percentile>` special
tokens, or "label: 12.5" in the raw-number mode used for the ablation), the
field separator and the member's history budget (in tokens).

Percentile buckets are fitted on the training catalogue (`PercentileBuckets.fit`)
and stored in the model: `ItemPrompt` builds the same prompts in-graph, so a
SavedModel embeds a new item from its raw fields (`upsert_items`).

Member prompts hold the profile fields and then the texts of the member's
*positively engaged* items, newest first, whole items only, while the total
token count stays within `history_budget` (`build_member_prompt`).
"""

import dataclasses
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

KINDS = ("text", "categorical", "numeric")
NUMBER_MODES = ("percentile", "raw")
NUM_BUCKETS = 100


@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """One prompt field: `name` (input column), `kind` (text / categorical /
  numeric) and `label` (what the prompt calls it; default the name)."""
  name: str
  kind: str
  label: str = ""

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"prompt field '{self.name}': kind must be one of {KINDS}, "
                       f"got '{self.kind}'")
    if not self.name:
      raise ValueError("prompt field needs a name")

  @property
  def title(self) -> str:
    return self.label or self.name

  def special_tokens(self):
    """(open, close) tokens of a numeric field: `<label_percentile>`."""
    return f"<{self.title}_percentile>", f"</{self.title}_percentile>"


@dataclasses.dataclass(frozen=True)
class PromptConfig:
  """Fields and order of both sides, number mode and the history budget."""
  item: tuple
  member: tuple = ()
  numbers: str = "percentile"
  separator: str = "; "
  value_separator: str = "|"     # multi-valued categorical cells in the input
  history_label: str = "watched"
  history_budget: int = 128      # tokens of history in a member prompt
  raw_precision: int = 1         # decimals of numbers in the raw mode

  def __post_init__(self):
    if self.numbers not in NUMBER_MODES:
      raise ValueError(f"prompts: numbers must be one of {NUMBER_MODES}, got "
                       f"'{self.numbers}'")
    if not self.item:
      raise ValueError("prompts: at least one item field is needed")
    for side in (self.item, self.member):
      names = [f.name for f in side]
      if len(set(names)) != len(names):
        raise ValueError(f"prompts: duplicate field names in {names}")
    if self.history_budget < 0:
      raise ValueError("prompts: history_budget must be >= 0")

  @classmethod
  def from_dict(cls, d: Mapping) -> "PromptConfig":
    d = dict(d)
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"prompts: unknown key(s) {sorted(unknown)}")
    for side in ("item", "member"):
      d[side] = tuple(FieldSpec(**f) for f in d.get(side, ()))
    return cls(**d)

  def replace(self, **kw) -> "PromptConfig":
    return dataclasses.replace(self, **kw)

  def numeric_fields(self) -> List[FieldSpec]:
    return [f for f in self.item + self.member if f.kind == "numeric"]

  def special_tokens(self) -> List[str]:
    """Every special token the prompts can contain (for the tokenizer)."""
    if self.numbers != "percentile":
      return []
    return [t for f in self.numeric_fields() for t in f.special_tokens()]


class PercentileBuckets:
  """Per-field percentile boundaries (the 1st..99th percentiles of the
  training values): bucket(x) = 1 + #{boundaries <= x}, in 1..100."""

  def __init__(self, boundaries: Mapping[str, Sequence[float]]):
    self.boundaries = {k: np.asarray(v, np.float64) for k, v in boundaries.items()}
    for k, b in self.boundaries.items():
      if b.shape != (NUM_BUCKETS - 1,) or np.any(np.diff(b) < 0):
        raise ValueError(f"percentile boundaries of '{k}' must be 99 sorted numbers")

  @classmethod
  def fit(cls, columns: Mapping[str, Sequence[float]]) -> "PercentileBuckets":
    out = {}
    for name, values in columns.items():
      v = np.asarray(values, np.float64)
      if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"percentiles of '{name}': need finite values, got "
                         f"{v.size} values")
      out[name] = np.percentile(v, np.arange(1, NUM_BUCKETS))
    return cls(out)

  def bucket(self, name: str, values) -> np.ndarray:
    if name not in self.boundaries:
      raise KeyError(f"no percentile boundaries for '{name}' (fitted: "
                     f"{sorted(self.boundaries)})")
    return 1 + np.searchsorted(self.boundaries[name], np.asarray(values, np.float64),
                               side="right")

  def to_dict(self) -> Dict[str, list]:
    return {k: v.tolist() for k, v in self.boundaries.items()}


def _number(cfg: PromptConfig, field: FieldSpec, values, buckets) -> List[str]:
  if cfg.numbers == "percentile":
    if buckets is None:
      raise ValueError("percentile prompts need fitted PercentileBuckets")
    start, end = field.special_tokens()
    return [f"{start}{b}{end}" for b in buckets.bucket(field.name, values)]
  return [f"{field.title}: {float(x):.{cfg.raw_precision}f}" for x in values]


def _field_texts(cfg: PromptConfig, fields, columns, buckets, n) -> List[List[str]]:
  parts = []
  for f in fields:
    if f.name not in columns:
      raise ValueError(f"prompt field '{f.name}' missing from the input columns "
                       f"{sorted(columns)}")
    col = list(columns[f.name])
    if len(col) != n:
      raise ValueError(f"prompt field '{f.name}' has {len(col)} rows, expected {n}")
    if f.kind == "text":
      parts.append([str(x) for x in col])
    elif f.kind == "categorical":
      parts.append([f"{f.title}: " + ", ".join(
          v for v in str(x).split(cfg.value_separator) if v) for x in col])
    else:
      parts.append(_number(cfg, f, col, buckets))
  return parts


def build_item_prompts(cfg: PromptConfig, columns: Mapping[str, Sequence],
                       buckets: Optional[PercentileBuckets] = None) -> List[str]:
  """One prompt per row of `columns` (the item fields, in `cfg.item` order)."""
  n = len(next(iter(columns.values()))) if columns else 0
  parts = _field_texts(cfg, cfg.item, columns, buckets, n)
  return [cfg.separator.join(p[i] for p in parts) for i in range(n)]


def build_member_prompt(cfg: PromptConfig, profile: Mapping[str, object],
                        history: Sequence[str], history_tokens: Sequence[int],
                        buckets: Optional[PercentileBuckets] = None,
                        engaged: Optional[Sequence[bool]] = None) -> str:
  """A member's prompt: profile fields, then history texts newest first.

  `history`: texts of the member's items, newest first; `history_tokens`: each
  text's token count; `engaged`: which of them the member engaged with
  positively (default all). Only engaged items enter, whole, while their token
  counts sum to at most `cfg.history_budget`.
  """
  if len(history) != len(history_tokens):
    raise ValueError("history and history_tokens differ in length")
  if engaged is not None and len(engaged) != len(history):
    raise ValueError("history and engaged differ in length")
  parts = [p[0] for p in _field_texts(cfg, cfg.member,
                                      {k: [v] for k, v in profile.items()}, buckets, 1)]
  chosen, used = [], 0
  for i, (text, count) in enumerate(zip(history, history_tokens)):
    if engaged is not None and not engaged[i]:
      continue
    if used + int(count) > cfg.history_budget:
      break
    chosen.append(text)
    used += int(count)
  if chosen:
    parts.append(f"{cfg.history_label}: " + " | ".join(chosen))
  return cfg.separator.join(parts)


class ItemPrompt(tf.keras.layers.Layer):
  """`build_item_prompts` in-graph: {field: [B] tensor} -> [B] prompts.

  Percentile boundaries are constants of the layer (saved with the model).

    layer = ItemPrompt(cfg, buckets)
    layer({"title": tf.constant(["Heat"]), "genres": tf.constant(["Action|Crime"]),
           "popularity": tf.constant([990.0])})
  """

  def __init__(self, cfg: PromptConfig, buckets: Optional[PercentileBuckets] = None,
               **kwargs):
    super().__init__(**kwargs)
    self.cfg = cfg
    self.buckets = buckets
    self._boundaries = {}
    if cfg.numbers == "percentile":
      for f in cfg.item:
        if f.kind == "numeric":
          if buckets is None or f.name not in buckets.boundaries:
            raise ValueError(f"ItemPrompt: no percentile boundaries for '{f.name}'")
          self._boundaries[f.name] = tf.constant(buckets.boundaries[f.name], tf.float64)

  def input_specs(self) -> Dict[str, tf.TensorSpec]:
    return {f.name: tf.TensorSpec([None], tf.float32 if f.kind == "numeric" else tf.string,
                                  name=f.name) for f in self.cfg.item}

  def call(self, columns: Mapping[str, tf.Tensor]) -> tf.Tensor:
    cfg = self.cfg
    parts = []
    for f in cfg.item:
      if f.name not in columns:
        raise ValueError(f"ItemPrompt: missing input field '{f.name}'")
      x = columns[f.name]
      if f.kind == "text":
        parts.append(x)
      elif f.kind == "categorical":
        values = tf.strings.split(x, cfg.value_separator)
        values = tf.ragged.boolean_mask(values, tf.strings.length(values) > 0)
        parts.append(tf.strings.join([f"{f.title}: ",
                                      tf.strings.reduce_join(values, axis=-1,
                                                             separator=", ")]))
      elif cfg.numbers == "percentile":
        # float32 input -> float64 exactly as numpy compares it.
        b = 1 + tf.searchsorted(self._boundaries[f.name], tf.cast(x, tf.float64),
                                side="right")
        start, end = f.special_tokens()
        parts.append(tf.strings.join([start, tf.strings.as_string(b), end]))
      else:
        parts.append(tf.strings.join([f"{f.title}: ", tf.strings.as_string(
            tf.cast(x, tf.float64), precision=cfg.raw_precision)]))
    return tf.strings.join(parts, separator=cfg.separator)
