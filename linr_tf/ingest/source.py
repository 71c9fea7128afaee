"""The change-source interface: `Record` and the `Source` abstract base.

A `Source` yields `Record(offset, data)` in order. Offsets are what a
snapshot stores to resume from; they are JSON values (the local log: global
sequence numbers; Redis: stream entry ids "ms-seq").

    source.seek(offset)            # deliver records after `offset` (None: from the start)
    source.read(max_records, timeout_s) -> [Record]
    source.commit(offset)          # records <= offset are in a snapshot: a broker may drop them
    source.close()

A Kafka source is the same four calls: seek = consumer.seek(tp, offset + 1),
read = poll, commit = commit offsets (see `linr_tf.ingest.open_source` for the
URL scheme). Implementations: `local_log.LocalLogSource` (the embedded segment
log) and `redis_stream.RedisStreamSource` (Redis Streams, a consumer group).
"""

import abc
import dataclasses
from typing import Any, List


@dataclasses.dataclass(frozen=True)
class Record:
  offset: Any
  data: bytes


class Source(abc.ABC):
  """Ordered records with resumable offsets (at-least-once)."""

  description = "source"

  @abc.abstractmethod
  def seek(self, offset) -> None:
    """Next reads deliver the records after `offset` (None: the first)."""

  @abc.abstractmethod
  def read(self, max_records: int, timeout_s: float) -> List[Record]:
    """Up to `max_records` records in order; [] if none came in `timeout_s`."""

  def commit(self, offset) -> None:
    """Records up to `offset` are durable downstream (in a snapshot)."""

  def close(self) -> None:
    pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
