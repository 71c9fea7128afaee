"""Crash test: SIGKILL the ingestor at random points while a producer writes,
restart it each time; after the last recovery the index equals a pure-Python
replay of the stream (nothing lost, nothing doubled) and the dead-letter log
holds exactly the malformed records.

Two variants (two Bazel targets): Redis Streams (real redis-server on a free
loopback port) with the full workload, and the local segment log, shorter.
Sizes come from the environment so the test can be scaled:
LINR_CRASH_EVENTS (default 100000 / 20000), LINR_CRASH_KILLS (20 / 6).
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from linr_tf.ingest import deadletter
from linr_tf.ingest import events as ev
from linr_tf.ingest import ingestor as ingestor_lib
from linr_tf.ingest import local_log
from linr_tf.ingest import redis_stream
import ingest_reference as ref_lib
import ingest_workload
from ingest_helpers import RedisServer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """An untrained two-tower model (dim 16) over 1000 items, exported."""
  from conftest import small_config  # pylint: disable=g-import-not-at-top
  from linr_tf import data as data_lib  # pylint: disable=g-import-not-at-top
  from linr_tf import training  # pylint: disable=g-import-not-at-top
  d = str(tmp_path_factory.mktemp("feed"))
  data_lib.generate_feed(d, num_users=100, num_items=1000,
                         interactions_per_user=5, seed=5)
  cfg = dataclasses.replace(small_config(), embedding_dim=16,
                            hidden_units=[32])
  path = training.export_untrained(cfg, d,
                                   str(tmp_path_factory.mktemp("export")))
  catalog, _ = training.load_data(cfg, d)
  return path, list(catalog.ids)


@pytest.fixture(scope="module")
def live_index():
  from linr_tf.index.live_index import LiveIndex  # pylint: disable=g-import-not-at-top
  return LiveIndex


def _ingest_cmd(model, source_url, snapshots, extra=()):
  return [sys.executable, "-m", "linr_tf", "ingest", f"--model={model}",
          f"--source={source_url}", f"--snapshots={snapshots}",
          "--snapshot_interval_s=0.5", "--ingest_batch_size=1000",
          "--log_interval_s=2", "--keep_snapshots=2", *extra]


class Producer(threading.Thread):
  """Publishes the workload at about `rate` records/s, in chunks."""

  def __init__(self, workload, publish, rate):
    super().__init__(daemon=True)
    self.workload, self.publish, self.rate = workload, publish, rate
    self.done = 0
    self.error = None

  def run(self):
    try:
      start = time.monotonic()
      chunk = 250
      for i in range(0, len(self.workload), chunk):
        now = time.time()
        self.publish([ingest_workload.render(e, now)
                      for e in self.workload[i:i + chunk]])
        self.done = i + chunk
        ahead = start + self.done / self.rate - time.monotonic()
        if ahead > 0:
          time.sleep(ahead)
    except Exception as e:  # pylint: disable=broad-except
      self.error = e


def _start(cmd, log_path):
  path = [REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(
      os.pathsep) if p]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
  log = open(log_path, "ab")
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env,
                          cwd=REPO)
  ready = threading.Event()

  def watch():
    for line in proc.stdout:
      log.write(b"[stdout] " + line)
      log.flush()
      if line.startswith(b"ingest: ready"):
        ready.set()

  threading.Thread(target=watch, daemon=True).start()
  return proc, ready


def crash_and_recover(cmd, work, producer, kills, seed):
  """Kills the ingestor `kills` times at random points, then lets it finish."""
  rng = np.random.default_rng(seed)
  log_path = os.path.join(work, "ingestor.log")
  history = []
  producer.start()
  for n in range(kills):
    proc, ready = _start(cmd, log_path)
    t0 = time.monotonic()
    before = ingestor_lib.list_snapshots(os.path.join(work, "snapshots"))
    u = rng.random()
    if u < 0.2:
      time.sleep(rng.uniform(0.2, 8.0))        # maybe while loading/restoring
    else:
      assert ready.wait(300), open(log_path, errors="replace").read()[-3000:]
      if u < 0.5:
        time.sleep(rng.uniform(0.0, 3.0))      # while (re)applying records
      else:                                    # after a new snapshot: mid-batch
        deadline = time.monotonic() + 60       # or mid-snapshot
        while (ingestor_lib.list_snapshots(os.path.join(work, "snapshots"))[:1]
               == before[:1] and time.monotonic() < deadline):
          time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
    assert proc.poll() is None, open(log_path, errors="replace").read()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    snaps = ingestor_lib.list_snapshots(os.path.join(work, "snapshots"))
    history.append((round(time.monotonic() - t0, 1), producer.done,
                    ingestor_lib.read_meta(snaps[0][1])["offset"]
                    if snaps else None))
  producer.join(600)
  assert producer.error is None, producer.error
  assert not producer.is_alive()
  proc, _ = _start(cmd + ["--exit_when_idle_s=3"], log_path)
  assert proc.wait(600) == 0, open(log_path, errors="replace").read()[-3000:]
  print("kills (seconds alive, records produced, snapshot offset):", history)
  return history


def check_against_reference(live_index, model, work, records):
  """The recovered index and dead-letter log vs. a replay of `records`."""
  base = live_index.load(model)
  spec = ev.Spec.from_live(base)
  validator = ev.Validator(spec)
  ref = ref_lib.ReferenceIndex(base.items(), base.tombstones())
  bad = ref_lib.replay(records, validator, ref)
  assert ref.counts["applied"] > len(records) // 3
  assert ref.counts["duplicate"] > 50        # repeated versions
  assert ref.counts["rejected"] > 50         # re-ordered (stale) versions

  live = live_index.load(model)
  snaps = ingestor_lib.list_snapshots(os.path.join(work, "snapshots"))
  meta = ingestor_lib.read_meta(snaps[0][1])
  assert meta["offset"] == records[-1][0]
  live.restore_snapshot(os.path.join(snaps[0][1], ingestor_lib.INDEX))
  items, tombstones = live.items(), live.tombstones()

  assert set(items) == set(ref.items), (
      f"missing {sorted(set(ref.items) - set(items))[:10]}, "
      f"extra {sorted(set(items) - set(ref.items))[:10]}")
  assert tombstones == ref.tombstones
  tower = {}
  by_features = [i for i, it in ref.items.items() if it.embedding is None]
  if by_features:   # tower embeddings of the final features, in a scratch index
    scratch = live_index.load(model)
    cols = {f.name: np.array([ref.items[i].features[f.name] for i in by_features],
                             f.numpy_dtype)
            for f in spec.item_features}
    big = np.full(len(by_features), 2**62, np.int64)
    scratch.upsert_items(np.array(by_features, dtype=object), big, cols)
    got = scratch.items()
    tower = {i: got[i][1] for i in by_features}
  for item_id, it in ref.items.items():
    version, emb, bits = items[item_id]
    assert version == it.version, item_id
    want_emb = it.embedding if it.embedding is not None else tower[item_id]
    np.testing.assert_allclose(emb, want_emb, rtol=1e-5, atol=1e-5,
                               err_msg=item_id)
    np.testing.assert_array_equal(
        bits, ref.attribute_bits(it, spec.schema, spec.attributes,
                                 spec.separator), err_msg=item_id)
  counters = meta["counters"]
  assert counters["records"] == len(records)
  assert counters["applied"] == ref.counts["applied"]
  assert counters["duplicate"] == ref.counts["duplicate"]
  assert counters["dead_lettered"] == len(bad)

  dead = deadletter.read(os.path.join(work, "snapshots", "dead_letter.jsonl"))
  offsets = [d["offset"] for d in dead]
  assert len(offsets) == len(set(offsets))   # deduplicated by offset
  assert set(offsets) == set(bad)
  for d in dead:
    assert d["reason"] == bad[d["offset"]]
  kinds = ingest_workload.MALFORMED_KINDS
  assert len(bad) >= len(kinds)
  return ref


def _sizes(default_events, default_kills):
  return (int(os.environ.get("LINR_CRASH_EVENTS", default_events)),
          int(os.environ.get("LINR_CRASH_KILLS", default_kills)))


def test_crash_recovery_redis(exported, live_index, tmp_path):
  n_events, kills = _sizes(100_000, 20)
  model, base_ids = exported
  spec = ev.Spec.from_live(live_index.load(model))
  workload = ingest_workload.make_workload(n_events, base_ids[:600], 2000,
                                           spec, seed=11)
  server = RedisServer().start()
  try:
    client = server.client()
    producer = Producer(workload, lambda recs: redis_stream.publish(
        client, "changes", recs), rate=len(workload) / 90.0)
    work = str(tmp_path)
    cmd = _ingest_cmd(model, server.url("changes"),
                      os.path.join(work, "snapshots"))
    history = crash_and_recover(cmd, work, producer, kills, seed=1)
    assert len(history) == kills
    # Most restarts resumed from a newer snapshot (progress between kills).
    assert len({h[2] for h in history}) >= kills // 3, history
    entries = client.xrange("changes")
    records = [(i.decode(), f[redis_stream.FIELD]) for i, f in entries]
    assert len(records) == len(workload)
    check_against_reference(live_index, model, work, records)
    # Everything a snapshot covers is acknowledged in the consumer group.
    assert client.xpending("changes", "linr-ingest")["pending"] == 0
  finally:
    server.stop()


def test_crash_recovery_local_log(exported, live_index, tmp_path):
  n_events, kills = _sizes(20_000, 6)
  model, base_ids = exported
  spec = ev.Spec.from_live(live_index.load(model))
  workload = ingest_workload.make_workload(n_events, base_ids[:600], 1000,
                                           spec, seed=12)
  log_dir = str(tmp_path / "log")
  writer = local_log.LocalLogWriter(log_dir, segment_bytes=1 << 20)
  producer = Producer(workload, writer.append, rate=len(workload) / 30.0)
  work = str(tmp_path)
  cmd = _ingest_cmd(model, f"local:{log_dir}", os.path.join(work, "snapshots"))
  crash_and_recover(cmd, work, producer, kills, seed=2)
  writer.close()
  assert len([s for s in os.listdir(log_dir) if s.startswith("segment-")]) > 1
  src = local_log.LocalLogSource(log_dir)
  records = []
  while True:
    got = src.read(10000, 0.1)
    if not got:
      break
    records.extend((r.offset, r.data) for r in got)
  assert len(records) == len(workload)
  check_against_reference(live_index, model, work, records)
