"""Sources: the local segment log (rolling, torn tails, seek) and Redis Streams
(consumer group, redelivery after SETID, acks) on a real loopback redis-server;
the dead-letter log."""

import json
import os
import threading

import pytest

from linr_tf import ingest
from linr_tf.ingest import deadletter
from linr_tf.ingest import local_log
from linr_tf.ingest import redis_stream
from ingest_helpers import RedisServer


def _drain(src, timeout=0.2, batch=1000):
  out = []
  while True:
    got = src.read(batch, timeout)
    if not got:
      return out
    out.extend(got)


def test_local_log_rolls_and_reads_in_order(tmp_path):
  d = str(tmp_path / "log")
  with local_log.LocalLogWriter(d, segment_bytes=40) as w:
    assert w.append([f'{{"n":{i}}}' for i in range(50)]) == list(range(50))
  segs = sorted(os.listdir(d))
  assert len([s for s in segs if s.startswith("segment-")]) > 5
  src = local_log.LocalLogSource(d)
  recs = _drain(src, batch=7)
  assert [r.offset for r in recs] == list(range(50))
  assert [json.loads(r.data)["n"] for r in recs] == list(range(50))
  for start in (None, 0, 13, 48, 49):
    src.seek(start)
    first = 0 if start is None else start + 1
    assert [r.offset for r in _drain(src)] == list(range(first, 50))
  with local_log.LocalLogWriter(d, segment_bytes=40) as w:  # reopen: continues
    assert w.append(["{}"]) == [50]


def test_local_log_torn_last_line(tmp_path):
  d = str(tmp_path / "log")
  with local_log.LocalLogWriter(d) as w:
    w.append(['{"a":1}', '{"a":2}'])
  seg = os.path.join(d, sorted(x for x in os.listdir(d)
                               if x.startswith("segment-"))[-1])
  with open(seg, "ab") as f:
    f.write(b'{"a":3, "tor')        # a crash mid-line
  src = local_log.LocalLogSource(d)
  assert [r.offset for r in _drain(src)] == [0, 1]   # torn line not delivered
  with local_log.LocalLogWriter(d) as w:                # recovery truncates it
    assert w.append(['{"a":3}']) == [2]
  recs = _drain(src)
  assert [(r.offset, r.data) for r in recs] == [(2, b'{"a":3}')]


def test_local_log_tails_a_live_writer(tmp_path):
  d = str(tmp_path / "log")
  w = local_log.LocalLogWriter(d, segment_bytes=300)
  n = 3000

  def produce():
    for i in range(0, n, 10):
      w.append([f'{{"n":{j}}}' for j in range(i, i + 10)])

  t = threading.Thread(target=produce)
  src = local_log.LocalLogSource(d, poll_s=0.001)
  t.start()
  got = []
  while len(got) < n:
    got.extend(src.read(100, 5.0))
  t.join()
  w.close()
  assert [r.offset for r in got] == list(range(n))
  assert [json.loads(r.data)["n"] for r in got] == list(range(n))


def test_local_log_empty_segment_returns_nothing(tmp_path):
  d = str(tmp_path / "log")
  with local_log.LocalLogWriter(d) as w:     # creates an empty segment 0
    src = local_log.LocalLogSource(d)
    assert src.read(10, 0.1) == []
    w.append(["{}"])
    assert [r.offset for r in src.read(10, 1.0)] == [0]


def test_local_log_one_writer(tmp_path):
  d = str(tmp_path / "log")
  with local_log.LocalLogWriter(d):
    with pytest.raises(RuntimeError, match="another writer"):
      local_log.LocalLogWriter(d)
  with pytest.raises(ValueError, match="newline"):
    with local_log.LocalLogWriter(d) as w:
      w.append(["a\nb"])


def test_open_source_urls(tmp_path):
  assert isinstance(ingest.open_source(f"local:{tmp_path}"),
                    local_log.LocalLogSource)
  with pytest.raises(ValueError, match="unknown source"):
    ingest.open_source("kafka://x")
  p = redis_stream.parse_url("redis://127.0.0.1:7000/chg?group=g1")
  assert (p["host"], p["port"], p["stream"], p["group"]) == (
      "127.0.0.1", 7000, "chg", "g1")
  with pytest.raises(ValueError, match="names no stream"):
    redis_stream.parse_url("redis://127.0.0.1:7000/")


@pytest.fixture(scope="module")
def redis_server():
  server = RedisServer().start()
  yield server
  server.stop()


def test_redis_group_read_commit_and_redelivery(redis_server):
  client = redis_server.client()
  ids = redis_stream.publish(client, "s1", [f'{{"n":{i}}}' for i in range(100)])
  assert len(ids) == 100
  src = ingest.open_source(redis_server.url("s1"))
  src.seek(None)
  recs = _drain(src, timeout=0.1, batch=30)
  assert [r.offset for r in recs] == ids
  assert [json.loads(r.data)["n"] for r in recs] == list(range(100))
  assert src.lag() == 0
  # Nothing committed: all 100 pending. Commit the first 40.
  src.commit(ids[39])
  assert client.xpending("s1", "linr-ingest")["pending"] == 60
  src.close()
  # A restart from a snapshot at ids[59]: entries after it come again, and
  # pending entries at or before it are acknowledged.
  src = ingest.open_source(redis_server.url("s1"))
  src.seek(ids[59])
  assert client.xpending("s1", "linr-ingest")["pending"] == 40
  recs = _drain(src, timeout=0.1)
  assert [r.offset for r in recs] == ids[60:]
  more = redis_stream.publish(client, "s1", ['{"n":100}'])
  assert [r.offset for r in src.read(10, 1.0)] == more
  src.commit(more[0])
  assert client.xpending("s1", "linr-ingest")["pending"] == 0
  # A restart with no snapshot replays everything.
  src.seek(None)
  assert len(_drain(src, timeout=0.1)) == 101
  src.close()


def test_redis_entry_without_event_field(redis_server):
  client = redis_server.client()
  client.xadd("s2", {"other": "x"})
  src = ingest.open_source(redis_server.url("s2"))
  src.seek(None)
  (rec,) = src.read(10, 1.0)
  assert rec.data.startswith(b"[")       # kept, to be dead-lettered
  src.close()


def test_dead_letter_dedup_and_torn_tail(tmp_path):
  path = str(tmp_path / "dl" / "dead.jsonl")
  log = deadletter.DeadLetterLog(path)
  assert log.add(5, "bad", b"{x")
  assert not log.add(5, "bad", b"{x")
  assert log.add("1-0", "worse", "y")
  log.close()
  with open(path, "ab") as f:
    f.write(b'{"offset": 9, "rea')
  log = deadletter.DeadLetterLog(path)
  assert not log.add(5, "bad", b"{x") and not log.add("1-0", "w", "y")
  assert log.add(9, "late", "z")
  log.close()
  entries = deadletter.read(path)
  assert [(e["offset"], e["reason"], e["event"]) for e in entries] == [
      (5, "bad", "{x"), ("1-0", "worse", "y"), (9, "late", "z")]
