"""Freshness histogram (event time -> searchable) and ingestion counters."""

import bisect
import math
import threading
from typing import Dict, List, Optional

import numpy as np


class Histogram:
  """Log-bucketed histogram of seconds (relative error of a quantile <= ~2.5%).

  Buckets: [0, lo), then geometric edges lo * growth^i up to hi, then [hi, inf).
  Negative values (producer clock ahead) count in the first bucket.
  """

  def __init__(self, lo: float = 1e-4, hi: float = 1e5, growth: float = 1.05):
    n = int(math.ceil(math.log(hi / lo) / math.log(growth)))
    self.edges: List[float] = [lo * growth ** i for i in range(n + 1)]
    self.counts = np.zeros(len(self.edges) + 1, np.int64)
    self.total = 0
    self.sum = 0.0
    self.max = -math.inf
    self.min = math.inf
    self._lock = threading.Lock()

  def add_many(self, values) -> None:
    values = np.asarray(values, np.float64).reshape(-1)
    if not values.size:
      return
    idx = np.searchsorted(self.edges, values, side="right")
    with self._lock:
      np.add.at(self.counts, idx, 1)
      self.total += values.size
      self.sum += float(values.sum())
      self.max = max(self.max, float(values.max()))
      self.min = min(self.min, float(values.min()))

  def add(self, value: float) -> None:
    self.add_many([value])

  def quantile(self, q: float) -> Optional[float]:
    """Upper edge of the bucket holding the q-quantile (clamped to max)."""
    with self._lock:
      if not self.total:
        return None
      rank = q * self.total
      cum = np.cumsum(self.counts)
      i = int(np.searchsorted(cum, rank, side="left"))
      i = min(i, len(self.counts) - 1)
      upper = self.edges[i] if i < len(self.edges) else self.max
      return float(min(upper, self.max))

  def merge(self, other: "Histogram") -> None:
    with self._lock:
      self.counts += other.counts
      self.total += other.total
      self.sum += other.sum
      self.max = max(self.max, other.max)
      self.min = min(self.min, other.min)

  def to_dict(self) -> Dict:
    return {"count": int(self.total),
            "p50_s": self.quantile(0.5), "p90_s": self.quantile(0.9),
            "p99_s": self.quantile(0.99),
            "mean_s": (self.sum / self.total) if self.total else None,
            "max_s": self.max if self.total else None}


class IngestMetrics:
  """Counters + freshness; `to_dict()` is what the ingestor logs and exports."""

  # dead_lettered: malformed events plus stale versions and updates of
  # unknown items; duplicate: a repeat of an applied version (redelivery).
  COUNTERS = ("records", "applied", "duplicate", "dead_lettered", "batches",
              "apply_calls", "snapshots")

  def __init__(self):
    self.counters = {c: 0 for c in self.COUNTERS}
    self.freshness = Histogram()

  def inc(self, name: str, n: int = 1) -> None:
    self.counters[name] += int(n)

  def to_dict(self) -> Dict:
    d = dict(self.counters)
    d["freshness"] = self.freshness.to_dict()
    return d
