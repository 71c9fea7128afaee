"""Independent numpy references for tests: brute-force filtered top-k."""

from typing import Dict, List, Sequence, Tuple

import numpy as np

FilterSpec = List[Tuple[str, Sequence[str]]]   # AND of (attribute IN values)


def filter_text(spec: FilterSpec) -> str:
  parts = []
  for attr, values in spec:
    if len(values) == 1:
      parts.append(f'{attr} = "{values[0]}"')
    else:
      parts.append(f"{attr} IN (" + ", ".join(f'"{v}"' for v in values) + ")")
  return " AND ".join(parts)


def passes(columns: Dict[str, np.ndarray], spec: FilterSpec, sep: str = "|"
           ) -> np.ndarray:
  n = len(next(iter(columns.values())))
  ok = np.ones(n, bool)
  for attr, values in spec:
    wanted = set(values)
    ok &= np.array([bool(wanted & set(str(c).split(sep))) for c in columns[attr]])
  return ok


def top_k(query: np.ndarray, items: np.ndarray, mask: np.ndarray, k: int):
  """(scores, positions) of the exact top-k passing items; ties: lower index."""
  scores = items.astype(np.float64) @ query.astype(np.float64)
  pos = np.flatnonzero(mask)
  order = np.lexsort((pos, -scores[pos]))[:k]
  return scores[pos[order]], pos[order]
