"""Live updates: a change stream applied to the in-model index (issue 5).

    events        the versioned change events (JSON) and their validation
    source        `Record` and the `Source` interface
    local_log     the embedded local segment log (writer + source)
    redis_stream  Redis Streams with a consumer group
    deadletter    rejected records with their reason
    ingestor      the loop: validate, split, apply, snapshot, recover; freshness
    open_source   `local:<dir>` / `redis://...` -> a `Source` (below)

The pure-Python replay oracle lives with the tests (tests/ingest_reference.py).
Importing this package needs neither redis nor any source module: `open_source`
imports the one it opens.
"""


def open_source(url: str, **kwargs):
  """`local:<dir>` or `redis://host:port/<stream>` (loopback by default).

  Returns a `linr_tf.ingest.source.Source`.
  """
  if url.startswith("local:"):
    from linr_tf.ingest import local_log  # pylint: disable=g-import-not-at-top
    return local_log.LocalLogSource(url[len("local:"):], **kwargs)
  if url.startswith("redis://"):
    from linr_tf.ingest import redis_stream  # pylint: disable=g-import-not-at-top
    return redis_stream.RedisStreamSource.from_url(url, **kwargs)
  raise ValueError(f"unknown source {url!r}: use local:<dir> or "
                   "redis://127.0.0.1:<port>/<stream>")
