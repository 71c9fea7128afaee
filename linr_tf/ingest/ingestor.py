"""The ingestor: a change stream -> the live in-model index, durably.

    live = LiveIndex.load("out/demo/export/1")
    ing = Ingestor(live, open_source("local:out/changes"), "out/snapshots")
    ing.recover()        # newest snapshot + its offset (or the export, from the start)
    ing.run()            # read, validate, apply, snapshot; until stopped

One step: read a batch of records; decode and validate each (bad ones go to
the dead-letter log with the reason, ingestion goes on); split the valid
events into rounds in which every item id appears at most once, keeping each
id's order (round r holds an id's r-th event of the batch); apply each round
with one LiveIndex call per op. The index applies an event only if its
version is newer, so a redelivered event is a no-op (counted `duplicate`):
at-least-once delivery + idempotent apply = effectively once. An event whose
version is older than the item's (non-monotonic), or an attribute update of
an item not in the index, does not apply and goes to the dead-letter log with
the reason (`events.not_applied_reason`).

Snapshots: every `snapshot_interval_s` (or `snapshot_every` records), between
batches, `live.save_snapshot` + the offset of the last record it covers + the
counters, written as `<dir>/snap-<seq>/{index/, meta.json}` under a temporary
name and renamed (atomic); the newest `keep_snapshots` are kept. The source is
then told (`commit`) that records up to the offset may be released. On start,
`recover()` restores the newest readable snapshot and seeks the source to
its offset, so records after it are read again.

Freshness: for every applied event, (time the apply call returned, i.e. the
item is searchable) - event_time, in a histogram (p50/p99), logged every
`log_interval_s` with the counters (absl logging) and in `metrics()`.
"""

import collections
import json
import os
import re
import shutil
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from linr_tf.fsutil import fsync_dir
from linr_tf.ingest import deadletter
from linr_tf.ingest import events as ev
from linr_tf.ingest import metrics as metrics_lib
from linr_tf.ingest.source import Record, Source

_SNAP = re.compile(r"snap-(\d{10})\Z")
META = "meta.json"
INDEX = "index"


def split_rounds(items: Sequence, key: Callable = lambda e: e.item_id
                 ) -> List[List]:
  """Rounds in which each key appears at most once; per-key order is kept."""
  rounds: List[List] = []
  seen: Dict[Any, int] = {}
  for item in items:
    k = key(item)
    r = seen.get(k, -1) + 1
    seen[k] = r
    if r == len(rounds):
      rounds.append([])
    rounds[r].append(item)
  return rounds


def list_snapshots(directory: str) -> List[Tuple[int, str]]:
  """(seq, path) of complete snapshots, newest first."""
  if not os.path.isdir(directory):
    return []
  out = []
  for name in os.listdir(directory):
    m = _SNAP.match(name)
    if m and os.path.exists(os.path.join(directory, name, META)):
      out.append((int(m.group(1)), os.path.join(directory, name)))
  return sorted(out, reverse=True)


def read_meta(path: str) -> Dict:
  with open(os.path.join(path, META), encoding="utf-8") as f:
    return json.load(f)


class Ingestor:
  """Applies a change stream to a LiveIndex (see the module docstring)."""

  def __init__(self, live, source: Source, snapshot_dir: str,
               dead_letter_path: Optional[str] = None,
               batch_size: int = 4096, poll_timeout_s: float = 0.05,
               snapshot_interval_s: float = 60.0,
               snapshot_every: int = 1_000_000, keep_snapshots: int = 3,
               log_interval_s: float = 30.0,
               metrics_path: Optional[str] = None,
               clock: Callable[[], float] = time.time):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._index_errors = (ValueError, tf.errors.InvalidArgumentError)
    self.live = live
    self.source = source
    self.snapshot_dir = snapshot_dir
    os.makedirs(snapshot_dir, exist_ok=True)
    self.dead_letter = deadletter.DeadLetterLog(
        dead_letter_path or os.path.join(snapshot_dir, "dead_letter.jsonl"))
    self.validator = ev.Validator(ev.Spec.from_live(live))
    # float64 columns: bucketed and exact float64 attributes (int64 ones
    # stay Python ints, exact past 2^53).
    columns = getattr(live, "columns", None)
    self._numeric = set(live.schema.numeric_attributes) | (
        {a for a, t in columns.numbers.items() if t == "float64"} if columns is not None
        else set())
    self._int64 = ({a for a, t in columns.numbers.items() if t == "int64"}
                   if columns is not None else set())
    self._attributes = list(live.attributes)
    self._features = list(live.item_features)
    self.batch_size = int(batch_size)
    self.poll_timeout_s = poll_timeout_s
    self.snapshot_interval_s = snapshot_interval_s
    self.snapshot_every = int(snapshot_every)
    self.keep_snapshots = max(1, int(keep_snapshots))
    self.log_interval_s = log_interval_s
    self.metrics_path = metrics_path
    self.clock = clock
    self.stats = metrics_lib.IngestMetrics()
    self.offset = None              # last record processed
    self.snapshot_offset = None     # offset the newest snapshot covers
    self._snapshot_seq = 0
    self._since_snapshot = 0
    self._last_snapshot_t = time.monotonic()
    self._last_log_t = time.monotonic()
    self._lock = threading.Lock()

  # -- start ----------------------------------------------------------------

  def recover(self):
    """Restores the newest readable snapshot and seeks the source after it.

    Returns the offset resumed after (None: from the start of the stream,
    over the index as loaded).
    """
    self._cleanup_temporaries()
    for seq, path in list_snapshots(self.snapshot_dir):
      try:
        meta = read_meta(path)
        self.live.restore_snapshot(os.path.join(path, INDEX))
      except Exception as e:  # pylint: disable=broad-except
        # A damaged snapshot: fall back to an older one (logged loudly).
        logging.error("ingest: snapshot %s unreadable (%s); trying older",
                      path, e)
        continue
      self._snapshot_seq = seq
      self.offset = self.snapshot_offset = meta.get("offset")
      for k, v in meta.get("counters", {}).items():
        if k in self.stats.counters:
          self.stats.counters[k] = int(v)
      logging.info("ingest: restored %s (offset %s)", path, self.offset)
      break
    self.source.seek(self.offset)
    self.warm_up()
    self._last_snapshot_t = time.monotonic()
    return self.offset

  def warm_up(self):
    """Calls each update signature once with no rows (the first call of a
    loaded function is slow), so the first real batch is not."""
    empty = np.zeros([0], dtype=object)
    none = np.zeros([0], np.int64)
    attrs = {a: (np.zeros([0], np.float32) if a in self._numeric
                 else np.zeros([0], np.int64) if a in self._int64 else empty)
             for a in self._attributes}
    feats = {f.name: np.zeros([0], f.numpy_dtype) for f in self._features}
    feats.update({a: v for a, v in attrs.items() if a not in feats})
    calls = [
        lambda: self.live.upsert_embeddings(
            empty, none, np.zeros([0, *(self.validator.spec.embedding_shape
                                        or (self.validator.spec.dim,))], np.float32),
            attrs, **self._cluster_ids([])),
        lambda: self.live.upsert_items(empty, none, feats),
        lambda: self.live.update_attributes(empty, none, attrs),
        lambda: self.live.delete_items(empty, none)]
    for call in calls:
      try:
        call()
      except self._index_errors as e:
        logging.warning("ingest: warm-up call failed: %s", _one_line(e))

  def _cleanup_temporaries(self):
    if not os.path.isdir(self.snapshot_dir):
      return
    for name in os.listdir(self.snapshot_dir):
      if name.startswith(".tmp-"):
        shutil.rmtree(os.path.join(self.snapshot_dir, name),
                      ignore_errors=True)

  # -- one step ----------------------------------------------------------------

  def poll(self, timeout_s: Optional[float] = None) -> int:
    """Reads and applies one batch; snapshots when due. Returns records read."""
    records = self.source.read(self.batch_size, self.poll_timeout_s
                               if timeout_s is None else timeout_s)
    if records:
      self.process(records)
    self.maybe_snapshot()
    self._maybe_log()
    return len(records)

  def process(self, records: Sequence[Record]) -> None:
    """Validates and applies records (in source order)."""
    valid: List[Tuple[Any, ev.Event, Record]] = []
    for rec in records:
      try:
        valid.append((rec.offset, ev.parse(rec.data, self.validator), rec))
      except ev.BadEvent as e:
        self._reject(rec, str(e))
    with self._lock:
      for rnd in split_rounds(valid, key=lambda t: t[1].item_id):
        by_op = collections.defaultdict(list)
        for t in rnd:
          by_op[t[1].op].append(t)
        for op in ev.OPS:
          if by_op.get(op):
            self._apply(op, by_op[op])
    self.dead_letter.flush()
    self.stats.inc("records", len(records))
    self.stats.inc("batches")
    self._since_snapshot += len(records)
    if records:
      self.offset = records[-1].offset

  def _reject(self, rec: Record, reason: str):
    self.stats.inc("dead_lettered")
    self.dead_letter.add(rec.offset, reason, rec.data)

  def _call(self, op: str, evs: Sequence[ev.Event]):
    """One LiveIndex call: (applied [n], previous_version [n])."""
    ids = np.array([e.item_id for e in evs], dtype=object)
    versions = np.array([e.version for e in evs], np.int64)
    live = self.live
    if op == ev.DELETE:
      return live.delete_items(ids, versions, return_previous=True)
    if op == ev.UPDATE_ATTRIBUTES:
      return live.update_attributes(ids, versions, ev.attribute_columns(
          evs, self._attributes, self._numeric), return_previous=True)
    if op == ev.UPSERT_EMBEDDING:
      emb = np.stack([e.payload["embedding"] for e in evs]).astype(np.float32)
      return live.upsert_embeddings(ids, versions, emb, ev.attribute_columns(
          evs, self._attributes, self._numeric), return_previous=True,
          **self._cluster_ids(evs))
    feats = {}
    for f in self._features:
      feats[f.name] = np.array([e.payload["features"][f.name] for e in evs], f.numpy_dtype)
    extra = [a for a in self._attributes if a not in feats]   # no item feature
    feats.update(ev.attribute_columns(evs, extra, self._numeric, key="features"))
    return live.upsert_items(ids, versions, feats, return_previous=True)

  def _cluster_ids(self, evs) -> dict:
    """{"cluster_ids": int32 [n]} of MoL upsert_embedding events (a model
    with clusters), else {}."""
    if not self.validator.spec.num_clusters:
      return {}
    return {"cluster_ids": np.array([e.payload["cluster_id"] for e in evs], np.int32)}

  def _apply(self, op: str, batch: Sequence[Tuple[Any, ev.Event, Record]]):
    """One index call; on rejection, halves the batch to isolate bad events."""
    try:
      applied, previous = self._call(op, [t[1] for t in batch])
      applied = np.asarray(applied, bool)
    except self._index_errors as e:
      if len(batch) == 1:
        self._reject(batch[0][2], f"rejected by the index: {_one_line(e)}")
        return
      mid = len(batch) // 2
      self._apply(op, batch[:mid])
      self._apply(op, batch[mid:])
      return
    now = self.clock()
    self.stats.inc("apply_calls")
    n_applied = int(applied.sum())
    self.stats.inc("applied", n_applied)
    for (_, e, rec), ok, prev in zip(batch, applied, previous):
      if ok:
        continue
      reason = ev.not_applied_reason(op, e.version, int(prev))
      if reason is None:
        self.stats.inc("duplicate")
      else:
        self._reject(rec, reason)
    if n_applied:
      times = np.array([t[1].event_time for t in batch], np.float64)[applied]
      self.stats.freshness.add_many(now - times)

  # -- snapshots ----------------------------------------------------------------

  def maybe_snapshot(self) -> Optional[str]:
    due = (self._since_snapshot >= self.snapshot_every or
           time.monotonic() - self._last_snapshot_t >= self.snapshot_interval_s)
    if due:
      return self.snapshot()
    return None

  def snapshot(self, force: bool = False) -> Optional[str]:
    """Writes a snapshot covering everything processed; None if no change."""
    self._last_snapshot_t = time.monotonic()
    if not force and self.offset == self.snapshot_offset and \
        self._since_snapshot == 0:
      return None
    seq = self._snapshot_seq + 1
    final = os.path.join(self.snapshot_dir, f"snap-{seq:010d}")
    tmp = os.path.join(self.snapshot_dir, f".tmp-snap-{seq:010d}-{os.getpid()}")
    if os.path.exists(tmp):
      shutil.rmtree(tmp)
    os.makedirs(tmp)
    self.dead_letter.flush()
    t0 = time.monotonic()
    with self._lock:
      self.live.save_snapshot(os.path.join(tmp, INDEX))
    meta = {"offset": self.offset, "source": self.source.description,
            "counters": dict(self.stats.counters), "seq": seq,
            "time": time.time()}
    meta["counters"]["snapshots"] += 1
    with open(os.path.join(tmp, META), "w", encoding="utf-8") as f:
      json.dump(meta, f)
      f.flush()
      os.fsync(f.fileno())
    fsync_dir(tmp)
    os.rename(tmp, final)
    fsync_dir(self.snapshot_dir)
    self._snapshot_seq = seq
    self.snapshot_offset = self.offset
    self._since_snapshot = 0
    self.stats.inc("snapshots")
    logging.info("ingest: snapshot %s (offset %s) in %.2f s", final,
                 self.offset, time.monotonic() - t0)
    self.source.commit(self.offset)
    for _, old in list_snapshots(self.snapshot_dir)[self.keep_snapshots:]:
      shutil.rmtree(old, ignore_errors=True)
    self._write_metrics()
    return final

  # -- metrics ----------------------------------------------------------------

  def metrics(self) -> Dict:
    d = self.stats.to_dict()
    d["offset"] = self.offset
    d["snapshot_offset"] = self.snapshot_offset
    return d

  def _maybe_log(self):
    if time.monotonic() - self._last_log_t >= self.log_interval_s:
      self._last_log_t = time.monotonic()
      m = self.metrics()
      f = m["freshness"]
      logging.info(
          "ingest: %d records, %d applied, %d duplicate, %d dead-lettered; "
          "freshness p50 %s p99 %s (n=%d); offset %s",
          m["records"], m["applied"], m["duplicate"], m["dead_lettered"],
          _ms(f["p50_s"]), _ms(f["p99_s"]), f["count"], m["offset"])
      self._write_metrics()

  def _write_metrics(self):
    if not self.metrics_path:
      return
    tmp = self.metrics_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(self.metrics(), f)
    os.replace(tmp, self.metrics_path)

  # -- loop ----------------------------------------------------------------

  def run(self, stop: Optional[threading.Event] = None,
          exit_when_idle_s: Optional[float] = None) -> Dict:
    """Polls until `stop` is set (or idle that long); final snapshot."""
    idle_since = time.monotonic()
    try:
      while stop is None or not stop.is_set():
        if self.poll():
          idle_since = time.monotonic()
        elif (exit_when_idle_s is not None and
              time.monotonic() - idle_since >= exit_when_idle_s):
          break
    finally:
      self.snapshot()
      self.dead_letter.flush()
      self._write_metrics()
    return self.metrics()

  def close(self):
    self.dead_letter.close()
    self.source.close()


def _ms(x):
  return "-" if x is None else f"{x * 1000:.1f} ms"


def _one_line(e: Exception) -> str:
  msg = getattr(e, "message", None) or str(e)
  lines = [l.strip() for l in msg.splitlines() if l.strip()]
  return lines[0] if lines else type(e).__name__
