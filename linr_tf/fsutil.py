"""Durable file-system writes: fsync of directories and trees.

A file written and renamed into place survives a crash only once the file
and its directory entry are on disk: `fsync_tree(tmp)` then `os.rename(tmp,
final)` then `fsync_dir(parent)`.
"""

import os


def fsync_dir(path: str) -> None:
  """Flushes a directory's entries (new, renamed or removed names) to disk."""
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def fsync_tree(root: str) -> None:
  """fsyncs every file below `root`, then every directory."""
  for dirpath, _, files in os.walk(root):
    for name in files:
      fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
      try:
        os.fsync(fd)
      finally:
        os.close(fd)
    fsync_dir(dirpath)
