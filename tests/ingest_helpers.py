"""Test helpers for the ingestor: a real redis-server on loopback, a spec."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import numpy as np


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class RedisServer:
  """`redis-server` (Debian's) on 127.0.0.1:<free port> in a temp dir.

  AOF on (fsync every write), no RDB snapshots; stopped (and its dir removed)
  by `stop()`.
  """

  def __init__(self):
    self.binary = shutil.which("redis-server")
    if not self.binary:
      raise RuntimeError("redis-server not found: bash tools/install.sh "
                         "installs it (apt-get install redis-server)")
    self.dir = tempfile.mkdtemp(prefix="linr-redis-")
    self.proc = None
    self.port = None

  def start(self, attempts: int = 5) -> "RedisServer":
    import redis  # pylint: disable=g-import-not-at-top
    for _ in range(attempts):
      self.port = free_port()
      self.proc = subprocess.Popen(
          [self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
           "--dir", self.dir, "--save", "", "--appendonly", "yes",
           "--appendfsync", "always", "--protected-mode", "yes",
           "--daemonize", "no", "--logfile",
           os.path.join(self.dir, "redis.log")],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
      client = redis.Redis(host="127.0.0.1", port=self.port)
      deadline = time.monotonic() + 10
      while time.monotonic() < deadline and self.proc.poll() is None:
        try:
          if client.ping():
            client.close()
            return self
        except redis.ConnectionError:
          time.sleep(0.05)
      self.stop(remove=False)
    raise RuntimeError(f"redis-server did not start; see {self.dir}/redis.log")

  def url(self, stream: str) -> str:
    return f"redis://127.0.0.1:{self.port}/{stream}"

  def client(self):
    import redis  # pylint: disable=g-import-not-at-top
    return redis.Redis(host="127.0.0.1", port=self.port)

  def stop(self, remove: bool = True):
    if self.proc is not None and self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()
    self.proc = None
    if remove:
      shutil.rmtree(self.dir, ignore_errors=True)


def demo_schema():
  """A schema like configs/demo.json's filter attributes."""
  from linr_tf import attributes as attributes_lib  # pylint: disable=g-import-not-at-top
  return attributes_lib.AttributeSchema.from_columns(
      {"lang": np.array(["en", "de", "fr"]),
       "topic": np.array(["ai|ml", "sports", "news"]),
       "type": np.array(["post", "article", "job"])},
      {"age_hours": (np.array([1.0]), [1, 6, 24, 72])})


def demo_spec(dim: int = 4):
  from linr_tf.config import FeatureSpec  # pylint: disable=g-import-not-at-top
  from linr_tf.ingest import events as ev  # pylint: disable=g-import-not-at-top
  return ev.Spec(dim=dim, schema=demo_schema(),
                 item_features=[FeatureSpec("item_id", "id"),
                                FeatureSpec("topic", "categorical", multivalued=True),
                                FeatureSpec("lang", "categorical"),
                                FeatureSpec("type", "categorical"),
                                FeatureSpec("age_hours", "numeric",
                                            boundaries=[1, 6, 24, 72])],
                 attributes=["age_hours", "lang", "topic", "type"],
                 item_id_feature="item_id")
