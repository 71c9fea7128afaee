"""The embedded local log: a directory of segment files, no server needed.

`LocalLogWriter` appends, `LocalLogSource` (a `source.Source`) reads and tails.
The directory holds segment files `segment-<first offset>.jsonl`, one record
per line, rolled by size; offsets are global sequence numbers. The writer
fsyncs every append (and the directory when it rolls), holds an exclusive lock
on the directory, and on open truncates a torn last line left by a crash.
Readers never deliver an incomplete line.
"""

import fcntl
import os
import re
import time
from typing import Iterable, List

from linr_tf.fsutil import fsync_dir
from linr_tf.ingest.source import Record, Source

_SEGMENT = re.compile(r"segment-(\d{20})\.jsonl\Z")
DEFAULT_SEGMENT_BYTES = 64 << 20


def _segment_name(start: int) -> str:
  return f"segment-{start:020d}.jsonl"


def _segments(directory: str) -> List[int]:
  starts = []
  for name in os.listdir(directory):
    m = _SEGMENT.match(name)
    if m:
      starts.append(int(m.group(1)))
  return sorted(starts)


class LocalLogWriter:
  """Appends records to a local log directory (one writer at a time)."""

  def __init__(self, directory: str, segment_bytes: int = DEFAULT_SEGMENT_BYTES,
               fsync: bool = True):
    self.directory = directory
    self.segment_bytes = int(segment_bytes)
    self.fsync = fsync
    os.makedirs(directory, exist_ok=True)
    self._lock = open(os.path.join(directory, "writer.lock"), "a+b")
    try:
      fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._lock.close()
      raise RuntimeError(f"another writer holds the log {directory}") from None
    starts = _segments(directory)
    if not starts:
      self._start, self.next_offset = 0, 0
      self._file = self._create(0)
    else:
      self._start = starts[-1]
      path = os.path.join(directory, _segment_name(self._start))
      with open(path, "rb") as f:
        data = f.read()
      end = data.rfind(b"\n") + 1  # drop a torn last line
      if end != len(data):
        with open(path, "r+b") as f:
          f.truncate(end)
          os.fsync(f.fileno())
      self.next_offset = self._start + data.count(b"\n", 0, end)
      self._file = open(path, "ab")

  def _create(self, start: int):
    f = open(os.path.join(self.directory, _segment_name(start)), "ab")
    if self.fsync:
      fsync_dir(self.directory)
    return f

  def append(self, records: Iterable) -> List[int]:
    """Appends records (str, bytes, or objects with .to_json()); fsyncs.

    Returns their offsets. A record must not contain a newline.
    """
    offsets = []
    for rec in records:
      if hasattr(rec, "to_json"):
        rec = rec.to_json()
      if isinstance(rec, str):
        rec = rec.encode("utf-8")
      if b"\n" in rec:
        raise ValueError("a log record must not contain a newline")
      if self._file.tell() >= self.segment_bytes:
        self._roll()
      self._file.write(rec + b"\n")
      offsets.append(self.next_offset)
      self.next_offset += 1
    self._file.flush()
    if self.fsync:
      os.fsync(self._file.fileno())
    return offsets

  def _roll(self):
    self._file.flush()
    os.fsync(self._file.fileno())
    self._file.close()
    self._start = self.next_offset
    self._file = self._create(self._start)

  def close(self):
    if self._file is not None:
      self._file.flush()
      if self.fsync:
        os.fsync(self._file.fileno())
      self._file.close()
      self._file = None
      self._lock.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class LocalLogSource(Source):
  """Reads a local log directory (tails it while a writer appends)."""

  def __init__(self, directory: str, poll_s: float = 0.02):
    self.directory = directory
    self.poll_s = poll_s
    self.description = f"local:{directory}"
    self._file = None
    self._start = None      # first offset of the open segment
    self._next = 0          # offset of the next line in the open segment
    self._skip_to = 0       # first offset to deliver
    self.seek(None)

  def seek(self, offset) -> None:
    self._close_file()
    self._skip_to = 0 if offset is None else int(offset) + 1
    self._start = None

  def _open_segment(self) -> bool:
    if not os.path.isdir(self.directory):
      return False
    starts = [s for s in _segments(self.directory)
              if self._start is None or s >= self._next]
    if self._start is None:
      # The segment holding _skip_to (or the first one).
      candidates = [s for s in starts if s <= self._skip_to]
      starts = [candidates[-1]] if candidates else starts[:1]
    elif starts and starts[0] != self._next:
      raise RuntimeError(f"local log {self.directory}: segment starting at "
                         f"{self._next} is missing (found {starts[0]})")
    if not starts:
      return False
    self._start = starts[0]
    self._next = self._start
    self._file = open(os.path.join(self.directory,
                                   _segment_name(self._start)), "rb")
    return True

  def _next_segment_exists(self) -> bool:
    # An empty segment has no successor yet (it would start at the same offset).
    return self._next != self._start and os.path.exists(
        os.path.join(self.directory, _segment_name(self._next)))

  def read(self, max_records: int, timeout_s: float) -> List[Record]:
    deadline = time.monotonic() + timeout_s
    out: List[Record] = []
    while True:
      if self._file is None and not self._open_segment():
        if time.monotonic() >= deadline:
          return out
        time.sleep(self.poll_s)
        continue
      while len(out) < max_records:
        pos = self._file.tell()
        line = self._file.readline()
        if not line.endswith(b"\n"):
          self._file.seek(pos)  # incomplete (being written, or torn): later
          break
        offset = self._next
        self._next += 1
        if offset >= self._skip_to:
          out.append(Record(offset, line[:-1]))
      if len(out) >= max_records:
        return out
      # At the end of the segment: move on if the next one exists (the writer
      # finishes a segment before creating the next).
      if self._next_segment_exists():
        self._close_file(keep_position=True)
        if not self._open_segment():
          return out
        continue
      if out or time.monotonic() >= deadline:
        return out
      time.sleep(self.poll_s)

  def _close_file(self, keep_position: bool = False):
    if self._file is not None:
      self._file.close()
      self._file = None
    if not keep_position:
      self._start = None

  def close(self) -> None:
    self._close_file()
