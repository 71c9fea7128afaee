"""The `ranking` section of a config: which candidate features the index
stores for the ranker, the ranker's shape and how it is trained.

    "ranking": {"dense_features": ["year", "popularity"],
                "id_features": {"genre": 20},
                "mode": "joint", "rank_weight": 1.0, "hard_negatives": 20}

`dense_features` become the `rank_dense` row store (float32 per item),
`id_features` (name -> vocabulary size; ids in [0, size)) the `rank_ids`
store (int64 per item); both are written by the index's atomic updates.
"""

import dataclasses
from typing import Dict, List, Sequence

MODES = ("separate", "joint", "cascade")
NEGATIVES = ("in_batch", "uniform")


@dataclasses.dataclass(frozen=True)
class RankingConfig:
  """Ranker over [query, stored candidate features, retrieval score].

  mode: "separate" (the ranking loss does not reach the retrieval towers),
    "joint" (shared towers, both losses) or "cascade" (joint, and the ranker
    also learns on the candidates retrieval returns: in-model hard negatives).
  rank_weight: weight of the ranking loss next to the retrieval loss.
  rating_weight: weight of the rating regression inside the ranking loss.
  hard_negatives: retrieved candidates per query used as negatives ("cascade").
  positive_rating: a rating >= this is an engagement (label 1).
  negatives: the ranker's easy negative per example: "in_batch" (the next
    example's item: popularity-distributed) or "uniform" (a catalogue item
    drawn uniformly; needs `JointModel.set_catalog`).
  """
  dense_features: List[str] = dataclasses.field(default_factory=list)
  id_features: Dict[str, int] = dataclasses.field(default_factory=dict)
  id_embedding_dim: int = 8
  cross_layers: int = 2
  projection_dim: int = 0
  hidden_units: List[int] = dataclasses.field(default_factory=lambda: [64, 32])
  mode: str = "joint"
  rank_weight: float = 1.0
  rating_weight: float = 0.1
  hard_negatives: int = 20
  positive_rating: float = 4.0
  negatives: str = "in_batch"

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"ranking.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
    if self.negatives not in NEGATIVES:
      raise ValueError(f"ranking.negatives must be one of {', '.join(NEGATIVES)}, "
                       f"got {self.negatives!r}")
    if len(set(self.dense_features)) != len(self.dense_features):
      raise ValueError(f"ranking.dense_features lists a feature twice: {self.dense_features}")
    if not isinstance(self.id_features, dict):
      raise ValueError("ranking.id_features must be an object name -> vocabulary size")
    for name, size in self.id_features.items():
      if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"ranking.id_features['{name}']: vocabulary size must be an "
                         f"integer >= 1, got {size!r}")
    for key in ("cross_layers", "hard_negatives"):
      if getattr(self, key) < 0:
        raise ValueError(f"ranking.{key} must be >= 0, got {getattr(self, key)}")
    if self.projection_dim < 0 or self.id_embedding_dim < 1:
      raise ValueError("ranking.projection_dim must be >= 0 and id_embedding_dim >= 1")
    if self.rank_weight < 0 or self.rating_weight < 0:
      raise ValueError("ranking.rank_weight and rating_weight must be >= 0")

  @property
  def id_names(self) -> List[str]:
    return list(self.id_features)

  @property
  def vocab_sizes(self) -> List[int]:
    return [int(self.id_features[n]) for n in self.id_features]


def from_dict(d) -> RankingConfig:
  """A `RankingConfig` from parsed JSON, rejecting unknown keys."""
  if d is None or isinstance(d, RankingConfig):
    return d
  if not isinstance(d, dict):
    raise ValueError(f"ranking must be an object, got {d!r}")
  bad = set(d) - {f.name for f in dataclasses.fields(RankingConfig)}
  if bad:
    raise ValueError(f"ranking: unknown keys {sorted(bad)}")
  return RankingConfig(**d)


def names(cfg: RankingConfig) -> Sequence[str]:
  return list(cfg.dense_features) + cfg.id_names
