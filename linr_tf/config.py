"""Configuration: which features feed each tower, which attributes filter, how to train.

A config is a JSON file (see `configs/demo.json`):

    cfg = linr_tf.config.load("configs/demo.json")
    cfg.item_features[0].name   # "item_id"
"""

import dataclasses
import json
from typing import Dict, List, Optional, Sequence

import numpy as np

from linr_tf.ranking.config import RankingConfig, from_dict as ranking_from_dict
from linr_tf.mol.config import MoLConfig, from_dict as mol_from_dict

FEATURE_TYPES = ("id", "categorical", "numeric")
CODE_SCORERS = ("hamming", "rabitq")
# A filter attribute's kind (see linr_tf/filter_kinds.py and README "Filters"):
# categorical attributes are "bitset" or "value_ids"; numeric ones "buckets"
# (bits per [lo, hi) of the feature's boundaries), "number" (exact float64),
# "int64" or "float64" (exact numbers).
CATEGORICAL_FILTER_KINDS = ("bitset", "value_ids")
NUMERIC_FILTER_KINDS = ("buckets", "number", "int64", "float64")
FILTER_KINDS = CATEGORICAL_FILTER_KINDS + NUMERIC_FILTER_KINDS
DEFAULT_VALUE_IDS_MIN_CARDINALITY = 1025  # = choose_kinds' bitset_max_values 1024 + 1


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """One input feature of a tower.

  Attributes:
    name: column name in the CSV and input name in the SavedModel signature.
    type: "id" (high-cardinality string, hashed vocabulary from data),
      "categorical" (string values, vocabulary from data), or "numeric"
      (float, bucketized by `boundaries`).
    embedding_dim: width of this feature's embedding.
    multivalued: categorical values separated by `separator` ("ai|ml").
    boundaries: bucket boundaries of a numeric feature (ascending).
  """
  name: str
  type: str
  embedding_dim: int = 16
  multivalued: bool = False
  boundaries: Optional[Sequence[float]] = None

  def __post_init__(self):
    if self.type not in FEATURE_TYPES:
      raise ValueError(f"feature '{self.name}': unknown type '{self.type}' "
                       f"(expected one of {', '.join(FEATURE_TYPES)})")
    if self.embedding_dim <= 0:
      raise ValueError(f"feature '{self.name}': embedding_dim must be > 0")
    if self.type == "numeric":
      b = list(self.boundaries or [])
      if not b or any(x >= y for x, y in zip(b, b[1:])):
        raise ValueError(f"feature '{self.name}': a numeric feature needs "
                         "strictly ascending `boundaries`")
    elif self.boundaries:
      raise ValueError(f"feature '{self.name}': `boundaries` only apply to "
                       "numeric features")
    if self.multivalued and self.type != "categorical":
      raise ValueError(f"feature '{self.name}': only categorical features "
                       "can be multivalued")

  @property
  def is_numeric(self) -> bool:
    return self.type == "numeric"

  @property
  def numpy_dtype(self):
    """What a column of this feature holds: float32 numbers or strings (object)."""
    return np.float32 if self.is_numeric else object

  @property
  def dtype(self):
    """The TensorFlow dtype of this feature's input: tf.float32 or tf.string."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top (config stays TF-free)
    return tf.float32 if self.is_numeric else tf.string

  def tensor_spec(self):
    """`tf.TensorSpec([None], dtype, name)`: one value per example."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.TensorSpec([None], self.dtype, name=self.name)

  def column(self, values) -> np.ndarray:
    """`values` as a 1-D numpy column of this feature's dtype."""
    return np.asarray(values).reshape(-1).astype(self.numpy_dtype)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  epochs: int = 3
  batch_size: int = 1024
  learning_rate: float = 0.1
  temperature: float = 0.1
  holdout_fraction: float = 0.1
  seed: int = 7


@dataclasses.dataclass(frozen=True)
class IndexConfig:
  """How the item index stores items (see `ItemIndex`).

  vectors: dtype of the stored float vectors ("float32", "float16",
    "bfloat16") or None to keep only 1-bit codes.
  code_bits: Sign-OPORP code length m (multiple of 32 in [64, 1024]); 0 = no
    codes (exact search over the vectors).
  code_seed: seed of the Sign-OPORP permutation and signs.
  rerank_factor: with codes and vectors, top rerank_factor * k candidates by
    codes are reranked exactly.
  code_scorer: how codes are scored: "hamming" (symmetric, matching bits of
    query and item codes: `SignOPORP`, `HammingSearch`) or "rabitq"
    (asymmetric: item codes plus a float32 factor per item against the query
    quantized to `query_bits` bits: `RaBitQ`, `RaBitQSearch`).
  query_bits: Bq of "rabitq", one of 1, 2, 4, 8.
  value_ids_min_cardinality: a categorical filter attribute without an
    explicit `filter_kind` is stored as value ids when it has at least this
    many distinct values in the catalogue, as a bitset below (the default
    1025 is `choose_kinds`' default: bitsets up to 1024 values).
  """
  vectors: Optional[str] = "float32"
  code_bits: int = 0
  code_seed: int = 0
  rerank_factor: int = 10
  code_scorer: str = "hamming"
  query_bits: int = 4
  value_ids_min_cardinality: int = DEFAULT_VALUE_IDS_MIN_CARDINALITY

  def __post_init__(self):
    if self.vectors not in (None, "float32", "float16", "bfloat16"):
      raise ValueError(f"index.vectors must be float32, float16, bfloat16 or null, "
                       f"got {self.vectors!r}")
    if self.code_bits and (self.code_bits % 32 or not 64 <= self.code_bits <= 1024):
      raise ValueError(f"index.code_bits must be 0 or a multiple of 32 in [64, 1024], "
                       f"got {self.code_bits}")
    if self.vectors is None and not self.code_bits:
      raise ValueError("index: vectors: null needs code_bits > 0")
    if self.rerank_factor < 1:
      raise ValueError(f"index.rerank_factor must be >= 1, got {self.rerank_factor}")
    if self.code_scorer not in CODE_SCORERS:
      raise ValueError(f"index.code_scorer must be one of {', '.join(CODE_SCORERS)}, "
                       f"got {self.code_scorer!r}")
    if self.query_bits not in (1, 2, 4, 8):
      raise ValueError(f"index.query_bits must be 1, 2, 4 or 8, got {self.query_bits}")
    if isinstance(self.value_ids_min_cardinality, bool) or not isinstance(
        self.value_ids_min_cardinality, int) or self.value_ids_min_cardinality < 1:
      raise ValueError("index.value_ids_min_cardinality must be an integer >= 1, got "
                       f"{self.value_ids_min_cardinality!r}")

  @property
  def code_factors(self) -> bool:
    """Whether the index stores a factor per code (the "rabitq" scorer)."""
    return bool(self.code_bits) and self.code_scorer == "rabitq"


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything a run needs besides the data paths."""
  query_features: List[FeatureSpec]
  item_features: List[FeatureSpec]
  filter_attributes: List[str]
  # attribute -> explicit kind (FILTER_KINDS); the JSON may also give it per
  # attribute: "filter_attributes": ["lang", {"name": "company", "filter_kind": "value_ids"}].
  filter_kinds: Dict[str, str] = dataclasses.field(default_factory=dict)
  embedding_dim: int = 64
  hidden_units: List[int] = dataclasses.field(default_factory=lambda: [128])
  item_id_feature: str = "item_id"
  query_id_feature: str = "user_id"
  separator: str = "|"
  train: TrainConfig = TrainConfig()
  index: IndexConfig = IndexConfig()
  # The ranker and its candidate features (linr_tf/ranking/); None = retrieval only.
  ranking: Optional[RankingConfig] = None
  # Mixture-of-Logits scoring (linr_tf/mol/); None = one embedding per side, dot product.
  mol: Optional[MoLConfig] = None

  def __post_init__(self):
    names = [f.name for f in self.item_features]
    if self.item_id_feature not in names:
      raise ValueError(f"item_id_feature '{self.item_id_feature}' must be one "
                       f"of the item features {names}")
    for spec_list, side in ((self.query_features, "query"),
                            (self.item_features, "item")):
      if not spec_list:
        raise ValueError(f"no {side} features configured")
      seen = set()
      for f in spec_list:
        if f.name in seen:
          raise ValueError(f"{side} feature '{f.name}' is listed twice")
        seen.add(f.name)
    for reserved in ("filter", "k"):
      if reserved in {f.name for f in self.query_features}:
        raise ValueError(f"'{reserved}' is a reserved signature input and "
                         "cannot be a query feature name")
    if self.embedding_dim <= 0:
      raise ValueError("embedding_dim must be > 0")
    self._check_filter_kinds()

  def _check_filter_kinds(self):
    specs = {s.name: s for s in self.item_features}
    if len(set(self.filter_attributes)) != len(self.filter_attributes):
      raise ValueError(f"filter_attributes lists an attribute twice: {self.filter_attributes}")
    for attr, kind in self.filter_kinds.items():
      if attr not in self.filter_attributes:
        raise ValueError(f"filter attribute '{attr}': a filter_kind is given but "
                         f"'{attr}' is not in filter_attributes {self.filter_attributes}")
      if kind not in FILTER_KINDS:
        raise ValueError(f"filter attribute '{attr}': unknown filter_kind {kind!r} "
                         f"(expected one of {', '.join(FILTER_KINDS)})")
      spec = specs.get(attr)
      if spec is not None and spec.is_numeric and kind not in NUMERIC_FILTER_KINDS:
        raise ValueError(f"filter attribute '{attr}': numeric feature, filter_kind must "
                         f"be one of {', '.join(NUMERIC_FILTER_KINDS)}, got {kind!r}")
      if spec is not None and not spec.is_numeric and kind in NUMERIC_FILTER_KINDS:
        raise ValueError(f"filter attribute '{attr}': {spec.type} feature (strings), "
                         f"filter_kind must be one of {', '.join(CATEGORICAL_FILTER_KINDS)}, "
                         f"got {kind!r}")
      if kind == "buckets" and spec is None:
        raise ValueError(f"filter attribute '{attr}': filter_kind 'buckets' needs a numeric "
                         "item feature (its boundaries)")

  def filter_kind(self, attr: str) -> Optional[str]:
    """The explicit kind of a filter attribute ("number" read as "float64"),
    or None: chosen from the data (`value_ids_min_cardinality`)."""
    kind = self.filter_kinds.get(attr)
    if kind is None and attr in self.numeric_features:
      kind = "buckets"   # a numeric feature without a kind: its buckets
    return "float64" if kind == "number" else kind

  @property
  def numeric_features(self) -> Dict[str, FeatureSpec]:
    return {s.name: s for s in self.item_features if s.is_numeric}

  def is_numeric_attribute(self, attr: str) -> bool:
    """Whether a filter attribute holds numbers (a numeric feature or an exact kind)."""
    return attr in self.numeric_features or self.filter_kinds.get(attr) in NUMERIC_FILTER_KINDS

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2)

  @property
  def numeric_attributes(self) -> Dict[str, FeatureSpec]:
    """Filter attributes that are numeric item features filtered by range on
    their buckets (kind "buckets", the default of a numeric feature)."""
    specs = self.numeric_features
    return {a: specs[a] for a in self.filter_attributes
            if a in specs and self.filter_kind(a) == "buckets"}


def from_dict(d: dict) -> Config:
  """Builds a Config from parsed JSON, rejecting unknown keys."""
  d = dict(d)
  known = {f.name for f in dataclasses.fields(Config)}
  unknown = set(d) - known
  if unknown:
    raise ValueError(f"unknown config keys: {sorted(unknown)}")

  def specs(key):
    out = []
    for i, raw in enumerate(d.get(key, [])):
      fields = {f.name for f in dataclasses.fields(FeatureSpec)}
      bad = set(raw) - fields
      if bad:
        raise ValueError(f"{key}[{i}]: unknown keys {sorted(bad)}")
      out.append(FeatureSpec(**raw))
    return out

  d["filter_attributes"], d["filter_kinds"] = _filter_attributes(
      d.get("filter_attributes", []), d.get("filter_kinds", {}))
  d["ranking"] = ranking_from_dict(d.get("ranking"))
  d["mol"] = mol_from_dict(d.get("mol"))
  d["query_features"] = specs("query_features")
  d["item_features"] = specs("item_features")
  for key, section in (("train", TrainConfig), ("index", IndexConfig)):
    if key in d:
      bad = set(d[key]) - {f.name for f in dataclasses.fields(section)}
      if bad:
        raise ValueError(f"{key}: unknown keys {sorted(bad)}")
      d[key] = section(**d[key])
  return Config(**d)


def _filter_attributes(entries, kinds):
  """(names, kinds) of `filter_attributes` entries: names or
  {"name": ..., "filter_kind": ...} objects (merged with `filter_kinds`)."""
  if not isinstance(kinds, dict):
    raise ValueError(f"filter_kinds must be an object attribute -> kind, got {kinds!r}")
  names, kinds = [], dict(kinds)
  for i, entry in enumerate(entries):
    if isinstance(entry, str):
      names.append(entry)
      continue
    if not isinstance(entry, dict) or "name" not in entry:
      raise ValueError(f"filter_attributes[{i}]: expected a name or an object with "
                       f"\"name\" (and \"filter_kind\"), got {entry!r}")
    bad = set(entry) - {"name", "filter_kind"}
    if bad:
      raise ValueError(f"filter_attributes[{i}] ('{entry['name']}'): unknown keys {sorted(bad)}")
    names.append(entry["name"])
    if "filter_kind" in entry:
      if kinds.get(entry["name"], entry["filter_kind"]) != entry["filter_kind"]:
        raise ValueError(f"filter attribute '{entry['name']}': two different filter kinds "
                         f"({kinds[entry['name']]!r} and {entry['filter_kind']!r})")
      kinds[entry["name"]] = entry["filter_kind"]
  return names, kinds


def load(path: str) -> Config:
  with open(path, encoding="utf-8") as f:
    return from_dict(json.load(f))
