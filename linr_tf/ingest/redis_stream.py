"""Redis Streams source: one consumer group, at-least-once.

    source = RedisStreamSource.from_url("redis://127.0.0.1:6379/changes")

Each stream entry holds the event JSON in field `e` (`publish` writes it).
Records are read with XREADGROUP (`>`: entries after the group's last delivered
id); offsets are entry ids ("1767000000000-0").

* `seek(offset)` (on start, from the newest snapshot's offset) creates the
  group if needed and moves its last delivered id to `offset` (XGROUP SETID;
  "0" when there is no snapshot), so every entry after the snapshot is
  delivered again; pending entries at or before `offset` are acknowledged.
* `commit(offset)` (after a snapshot) XACKs the entries delivered up to it, so
  the group's pending list holds only what no snapshot covers yet.
"""

import urllib.parse
from typing import List, Optional, Sequence

import redis

from linr_tf.ingest.source import Record, Source

FIELD = b"e"
DEFAULT_GROUP = "linr-ingest"
DEFAULT_CONSUMER = "ingestor"


def _key(entry_id) -> tuple:
  if isinstance(entry_id, bytes):
    entry_id = entry_id.decode()
  ms, _, seq = str(entry_id).partition("-")
  return int(ms), int(seq or 0)


def parse_url(url: str):
  """redis://host:port/<stream>[?group=..&consumer=..&db=N] -> parts."""
  u = urllib.parse.urlparse(url)
  if u.scheme != "redis":
    raise ValueError(f"not a redis:// URL: {url!r}")
  stream = u.path.lstrip("/")
  if not stream:
    raise ValueError(f"{url!r} names no stream: redis://host:port/<stream>")
  q = dict(urllib.parse.parse_qsl(u.query))
  return dict(host=u.hostname or "127.0.0.1", port=u.port or 6379,
              stream=stream, group=q.get("group", DEFAULT_GROUP),
              consumer=q.get("consumer", DEFAULT_CONSUMER),
              db=int(q.get("db", 0)))


def publish(client: "redis.Redis", stream: str, records: Sequence,
            pipeline_size: int = 500) -> List[str]:
  """XADDs records (str/bytes/objects with .to_json()); returns entry ids."""
  ids = []
  for i in range(0, len(records), pipeline_size):
    pipe = client.pipeline(transaction=False)
    for rec in records[i:i + pipeline_size]:
      if hasattr(rec, "to_json"):
        rec = rec.to_json()
      pipe.xadd(stream, {FIELD: rec})
    ids.extend(x.decode() if isinstance(x, bytes) else x
               for x in pipe.execute())
  return ids


class RedisStreamSource(Source):
  """Reads a Redis stream through a consumer group."""

  def __init__(self, client: "redis.Redis", stream: str,
               group: str = DEFAULT_GROUP, consumer: str = DEFAULT_CONSUMER):
    self.client = client
    self.stream = stream
    self.group = group
    self.consumer = consumer
    kw = client.connection_pool.connection_kwargs
    self.description = (f"redis://{kw.get('host')}:{kw.get('port')}/{stream}"
                        f"?group={group}")
    self._delivered: List[bytes] = []   # ids read, not yet acknowledged

  @classmethod
  def from_url(cls, url: str, **kwargs) -> "RedisStreamSource":
    p = parse_url(url)
    client = redis.Redis(host=p["host"], port=p["port"], db=p["db"],
                         socket_timeout=kwargs.pop("socket_timeout", 30))
    return cls(client, p["stream"], p["group"], p["consumer"])

  def _ensure_group(self):
    try:
      self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
    except redis.ResponseError as e:
      if "BUSYGROUP" not in str(e):
        raise

  def seek(self, offset) -> None:
    self._ensure_group()
    position = "0" if offset is None else str(offset)
    self.client.xgroup_setid(self.stream, self.group, position)
    self._delivered = []
    if offset is not None:
      self._ack_pending_upto(position)

  def _ack_pending_upto(self, position: str):
    while True:
      pending = self.client.xpending_range(self.stream, self.group, min="-",
                                           max=position, count=1000)
      if not pending:
        return
      self.client.xack(self.stream, self.group,
                       *[p["message_id"] for p in pending])
      if len(pending) < 1000:
        return

  def read(self, max_records: int, timeout_s: float) -> List[Record]:
    block_ms = max(1, int(timeout_s * 1000))
    reply = self.client.xreadgroup(self.group, self.consumer,
                                   {self.stream: ">"}, count=max_records,
                                   block=block_ms)
    out = []
    for _, entries in reply or []:
      for entry_id, fields in entries:
        self._delivered.append(entry_id)
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        if fields is None:          # trimmed/deleted: nothing to apply
          data = b""
        elif FIELD in fields:
          data = fields[FIELD]
        else:
          data = repr(sorted(fields)).encode()  # malformed: dead-lettered
        out.append(Record(eid, data))
    return out

  def commit(self, offset) -> None:
    if offset is None:
      return
    limit = _key(offset)
    done = [i for i in self._delivered if _key(i) <= limit]
    self._delivered = [i for i in self._delivered if _key(i) > limit]
    for i in range(0, len(done), 1000):
      self.client.xack(self.stream, self.group, *done[i:i + 1000])

  def lag(self) -> Optional[int]:
    """Entries not yet delivered to the group (Redis >= 7), if known."""
    for g in self.client.xinfo_groups(self.stream):
      name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
      if name == self.group:
        return g.get("lag")
    return None

  def close(self) -> None:
    self.client.close()
