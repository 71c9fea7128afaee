"""Dead-letter log: rejected records with the reason, JSON lines.

Each line: {"offset": <source offset>, "reason": "...", "event": "<the record
as received, text>", "time": <unix seconds>}. A record redelivered after a
restart is written once (offsets already in the log are skipped), and a torn
last line left by a crash is dropped when the log is opened.
"""

import json
import os
import time
from typing import Any, Dict, List


def _key(offset) -> str:
  return json.dumps(offset)


class DeadLetterLog:

  def __init__(self, path: str, fsync: bool = True):
    self.path = path
    self.fsync = fsync
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self._seen = set()
    if os.path.exists(path):
      with open(path, "rb") as f:
        data = f.read()
      end = data.rfind(b"\n") + 1
      if end != len(data):
        with open(path, "r+b") as f:
          f.truncate(end)
      for line in data[:end].splitlines():
        try:
          self._seen.add(_key(json.loads(line)["offset"]))
        except (ValueError, KeyError, TypeError):
          continue
    self._file = open(path, "ab")
    self._dirty = False
    self.count = 0   # written by this process

  def add(self, offset: Any, reason: str, data) -> bool:
    """Records a rejected record; False if its offset is already logged."""
    k = _key(offset)
    if k in self._seen:
      return False
    self._seen.add(k)
    if isinstance(data, (bytes, bytearray)):
      data = bytes(data).decode("utf-8", errors="backslashreplace")
    line = json.dumps({"offset": offset, "reason": reason, "event": data,
                       "time": time.time()}, separators=(",", ":"))
    self._file.write(line.encode("utf-8") + b"\n")
    self._dirty = True
    self.count += 1
    return True

  def flush(self):
    if self._dirty:
      self._file.flush()
      if self.fsync:
        os.fsync(self._file.fileno())
      self._dirty = False

  def close(self):
    self.flush()
    self._file.close()


def read(path: str) -> List[Dict[str, Any]]:
  """The complete entries of a dead-letter log."""
  out = []
  if not os.path.exists(path):
    return out
  with open(path, "rb") as f:
    for line in f:
      if line.endswith(b"\n"):
        out.append(json.loads(line))
  return out
