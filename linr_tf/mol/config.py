"""The `mol` section of a config: Mixture-of-Logits scoring (off when absent).

    "mol": {"query_embeddings": 4, "item_embeddings": 4, "gate_units": [32],
            "gate": "softmax", "clusters": 100, "cluster_mode": "fixed"}

P = `query_embeddings` and Q = `item_embeddings` components of width
`embedding_dim`; `clusters` > 0 adds one item component, the embedding of
the item's k-means cluster (`cluster_mode` "fixed": the centroids, not
trained; "trainable": initialised from them); `rerank_candidates` > 0 serves
by a dot-product top-K' (mean query x mean item component) then an exact MoL
rerank instead of the exhaustive MoL scan.
"""

import dataclasses
from typing import List, Optional

GATES = ("softmax", "constant", "linear")
CLUSTER_MODES = ("fixed", "trainable")


@dataclasses.dataclass(frozen=True)
class MoLConfig:
  """P x Q Mixture-of-Logits; see the module docstring."""
  query_embeddings: int = 2
  item_embeddings: int = 2
  gate_units: List[int] = dataclasses.field(default_factory=lambda: [32])
  gate: str = "softmax"
  clusters: int = 0
  cluster_mode: str = "fixed"
  kmeans_iterations: int = 25
  rerank_candidates: int = 0
  vector_dtype: str = "float32"

  def __post_init__(self):
    for key in ("query_embeddings", "item_embeddings"):
      value = getattr(self, key)
      if not 1 <= value <= 8:
        raise ValueError(f"mol.{key} must be in [1, 8], got {value}")
    if self.item_embeddings + (1 if self.clusters else 0) > 8:
      raise ValueError("mol.item_embeddings + 1 cluster component must be <= 8")
    if self.gate not in GATES:
      raise ValueError(f"mol.gate must be one of {', '.join(GATES)}, got {self.gate!r}")
    if self.cluster_mode not in CLUSTER_MODES:
      raise ValueError(f"mol.cluster_mode must be one of {', '.join(CLUSTER_MODES)}, "
                       f"got {self.cluster_mode!r}")
    if self.clusters < 0 or self.rerank_candidates < 0 or self.kmeans_iterations < 1:
      raise ValueError("mol.clusters and mol.rerank_candidates must be >= 0, "
                       "mol.kmeans_iterations >= 1")
    if self.vector_dtype not in ("float32", "float16", "bfloat16"):
      raise ValueError(f"mol.vector_dtype must be float32, float16 or bfloat16, "
                       f"got {self.vector_dtype!r}")


def from_dict(d) -> Optional[MoLConfig]:
  """A MoLConfig from parsed JSON (None stays None), rejecting unknown keys."""
  if d is None:
    return None
  if isinstance(d, MoLConfig):
    return d
  bad = set(d) - {f.name for f in dataclasses.fields(MoLConfig)}
  if bad:
    raise ValueError(f"mol: unknown keys {sorted(bad)}")
  return MoLConfig(**d)
