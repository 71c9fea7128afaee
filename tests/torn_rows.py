"""Readers beside a writer on one ItemIndex: the torn-row check shared by the
CPU test (tests/live_index_test.py) and the GPU test (tests/gpu/rows_gpu_test.py).

    errors, checked, deleted_at = check_readers_and_writer(index, schema, dim=8, n=400)

Item i at version v has embedding e0 * (1000 v + i) and attribute
parity = v % 2; the query e0 with filter parity = "even" therefore scores
1000 v + i: the score names the version and the id whose vector it is, and
the even parity the attribute row of that same version. The writer upserts
random batches, deletes some items for good and grows the index while the
readers search. Readers and writer run graph functions only, as a server
does (its signatures): eager ops on the GPU from several threads at once
failed inside TensorFlow ("Type mismatch: actual string vs. expect int32" in
EagerConst / StridedSlice), in the test's own code, not in the index.
"""

import threading
import time
import traceback

import numpy as np
import tensorflow as tf

from linr_tf.attributes import AttributeSchema


def parity_schema() -> AttributeSchema:
  return AttributeSchema.from_columns({"parity": np.array(["even", "odd"])})


def item_rows(schema, dim, ids, v):
  """(embeddings, bitsets) of `ids` at version v."""
  emb = np.zeros((len(ids), dim), np.float32)
  emb[:, 0] = [1000 * v + int(i[1:]) % 1000 for i in ids]
  bits = schema.encode({"parity": np.array(["even" if v % 2 == 0 else "odd"] * len(ids))})
  return emb, bits


def _host(*arrays):
  with tf.device("/CPU:0"):
    return [tf.constant(np.asarray(a)) for a in arrays]


def check_readers_and_writer(index, schema, dim, n, versions=120, readers=2):
  """Assigns n items, then runs `readers` searching threads beside one writer
  of `versions` versions. Returns (errors, searches checked, deleted_at)."""
  ids = [f"i{j}" for j in range(n)]
  index.assign(ids, *item_rows(schema, dim, ids, 0))
  search = tf.function(lambda q, f: index(q, f, k=64))
  index.writer_lock.resource_handle   # the mutex is made eagerly, outside the functions
  upsert = tf.function(lambda i, v, e, a: index.upsert(i, v, e, a).applied,
                       reduce_retracing=True)
  delete = tf.function(lambda i, v: index.delete(i, v).applied, reduce_retracing=True)
  query = np.zeros((1, dim), np.float32)
  query[0, 0] = 1.0
  query_t, filter_t = _host(query, ['parity = "even"'])
  deleted_at = {}
  stop = threading.Event()
  errors = []
  checked = [0]

  def write(batch, v):
    upsert(*_host(batch, np.full(len(batch), v, np.int64), *item_rows(schema, dim, batch, v)))

  def writer():
    try:
      rng = np.random.default_rng(5)
      for v in range(1, versions):
        batch = sorted({ids[j] for j in rng.integers(0, n, 60)} - set(deleted_at))
        write(batch, v)
        if v % 10 == 0:  # delete for good (highest version)
          victims = list(batch[:5])
          delete(*_host(victims, np.full(len(victims), 10**9, np.int64)))
          now = time.monotonic()
          for i in victims:
            deleted_at[i] = now
        if v % 7 == 0:  # grow the index while readers run
          write([f"i{1000 * v + j}" for j in range(50)], v)
    except Exception as e:  # pylint: disable=broad-except
      errors.append(f"writer: {type(e).__name__}: {str(e)[:600]}")
    finally:
      stop.set()

  def reader():
    try:
      while not stop.is_set():
        started = time.monotonic()
        scores, found, count = (t.numpy() for t in search(query_t, filter_t))
        for s, i in zip(scores[0][:count[0]], found[0][:count[0]]):
          i = i.decode()
          v, num = divmod(int(round(float(s))), 1000)
          if num != int(i[1:]) % 1000 or v % 2:
            errors.append(f"torn row: id {i} score {s}")
          if i in deleted_at and deleted_at[i] < started:
            errors.append(f"deleted item {i} returned")
        checked[0] += 1
    except Exception as e:  # pylint: disable=broad-except
      errors.append(f"reader: {type(e).__name__}: {str(e)[:300]} at "
                    f"{traceback.format_exc()[-900:]}")

  threads = [threading.Thread(target=reader) for _ in range(readers)]
  threads.append(threading.Thread(target=writer))
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=300)
  for e in errors[:3]:
    print(e)                             # pytest shows it with a failure
  return errors, checked[0], deleted_at
