"""LinrReadRows / LinrWriteRows with the index variables in GPU memory.

Numeric stores (vectors float16 / float32, attributes uint32, versions int64,
codes uint32: the index's storage dtypes, since TensorFlow keeps int32
variables in host memory) are created under tf.device("/GPU:0"); the ids (tf.string) live
on the CPU (TensorFlow keeps strings in host memory), so one op reads and
writes variables of two devices under their locks. Needs a CUDA build of the
op library (tools/build_ops.sh OUT --cuda) and a GPU; skipped without a GPU.
"""


import numpy as np
import pytest
import tensorflow as tf

if not tf.config.list_physical_devices("GPU"):
  pytest.skip("no GPU", allow_module_level=True)

from linr_tf import ops  # noqa: E402
from linr_tf.index import ItemIndex  # noqa: E402
from torn_rows import check_readers_and_writer, parity_schema  # noqa: E402

DIM, WORDS, CODE_WORDS = 6, 2, 3


def _on_gpu(var):
  return "GPU" in var.device.upper()


def _make(rows, vector_dtype, seed=0):
  """(variables, numpy values): ids on CPU, the rest on GPU:0."""
  rng = np.random.default_rng(seed)
  values = [
      np.array([f"id{j}" for j in range(rows)], object),
      rng.integers(0, 1 << 40, rows).astype(np.int64),
      rng.integers(0, 2**32, (rows, WORDS)).astype(np.uint32),
      rng.standard_normal((rows, DIM)).astype(vector_dtype),
      rng.integers(0, 2**32, (rows, CODE_WORDS)).astype(np.uint32),
  ]
  with tf.device("/CPU:0"):
    ids = tf.Variable(values[0].astype(bytes), shape=tf.TensorShape([None]), trainable=False)
  with tf.device("/GPU:0"):
    rest = [tf.Variable(v, shape=tf.TensorShape([None, *v.shape[1:]]), trainable=False)
            for v in values[1:]]
  variables = [ids] + rest
  assert "CPU" in ids.device.upper(), ids.device
  for v in rest:
    assert _on_gpu(v), v.device
  return variables, values


def _assert_equal(got, want):
  got = got.numpy() if hasattr(got, "numpy") else got
  if want.dtype == object:
    np.testing.assert_array_equal([g.decode() for g in got], want)
  else:
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("vector_dtype", [np.float16, np.float32])
@pytest.mark.parametrize("graph", [False, True])
def test_read_rows_on_gpu_matches_numpy(vector_dtype, graph):
  variables, values = _make(37, vector_dtype)
  read = lambda: ops.read_rows(variables)
  if graph:
    read = tf.function(read)
  out = read()
  for got, want in zip(out, values):
    _assert_equal(got, want)
  # The numeric snapshot stays in GPU memory (aliases the variables).
  for t in out[1:]:
    assert "GPU" in t.device.upper(), t.device
  # Subsets and orders other than the layout's, a string-only read.
  _assert_equal(ops.read_rows([variables[3], variables[0]])[1], values[0])
  _assert_equal(ops.read_rows([variables[0]])[0], values[0])
  _assert_equal(ops.read_rows([variables[2]])[0], values[2])


def _reference_write(values, rows, new, min_rows):
  r = values[0].shape[0]
  target = max(min_rows, 2 * r) if min_rows > r else r
  out = []
  for v, n in zip(values, new):
    grown = np.zeros((target, *v.shape[1:]), v.dtype) if v.dtype != object else \
        np.array([""] * target, object)
    grown[:r] = v
    grown[rows] = n
    out.append(grown)
  return out, target


@pytest.mark.parametrize("vector_dtype", [np.float16, np.float32])
@pytest.mark.parametrize("graph", [False, True])
def test_write_rows_scatter_growth_min_rows(vector_dtype, graph):
  variables, values = _make(10, vector_dtype, seed=1)
  write = ops.write_rows
  if graph:
    write = tf.function(lambda v, r, x, m: ops.write_rows(v, r, x, m))
  rng = np.random.default_rng(2)
  # In place, growth by doubling (min_rows 15 -> 20), growth to min_rows
  # (50 > 2 * 20), an empty write, and a write while a reader holds the
  # buffers (copy-on-write: the snapshot keeps its version).
  for rows, min_rows in [([3, 0, 7], 0), ([12, 1], 15), ([49, 20, 2], 50), ([], 0),
                         ([5, 44], 0)]:
    m = len(rows)
    new = [np.array([f"new{rows[j]}-{min_rows}" for j in range(m)], object),
           rng.integers(0, 1 << 40, m).astype(np.int64),
           rng.integers(0, 2**32, (m, WORDS)).astype(np.uint32),
           rng.standard_normal((m, DIM)).astype(vector_dtype),
           rng.integers(0, 2**32, (m, CODE_WORDS)).astype(np.uint32)]
    held = ops.read_rows(variables)
    held_values = [t.numpy() for t in held]
    tf_new = [tf.constant(new[0].astype(bytes) if m else np.zeros([0], bytes), tf.string)] + \
        [tf.constant(x.reshape((m, *v.shape[1:]))) for x, v in zip(new[1:], values[1:])]
    num_rows = write(variables, tf.constant(rows, tf.int64), tf_new, tf.constant(min_rows, tf.int64))
    values, target = _reference_write(values, rows, new, min_rows)
    assert int(num_rows) == target
    for got, want in zip(ops.read_rows(variables), values):
      _assert_equal(got, want)
    for got, want in zip(held, held_values):  # the snapshot is untouched
      np.testing.assert_array_equal(got.numpy(), want)
    for v in variables[1:]:
      assert _on_gpu(v), v.device
    assert "CPU" in variables[0].device.upper()
    del held


def test_write_rows_errors_on_gpu():
  variables, _ = _make(4, np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match="out of range"):
    ops.write_rows(variables[1:2], [9], [tf.constant([1], tf.int64)], 0)
  with pytest.raises(tf.errors.InvalidArgumentError, match="given twice"):
    ops.write_rows(variables[1:2], [1, 1], [tf.constant([1, 2], tf.int64)], 0)


def test_concurrent_gpu_index_never_sees_torn_rows():
  """Readers in parallel with a writer on an ItemIndex built on the GPU
  (the scheme of tests/torn_rows.py, shared with the CPU test)."""
  schema = parity_schema()
  dim, n = 8, 400
  with tf.device("/GPU:0"):
    index = ItemIndex(dim, schema.keys, name="gpu_concurrent_index")
  for name in ("vectors", "attributes", "versions"):
    assert _on_gpu(getattr(index, name)), (name, getattr(index, name).device)
  errors, checked, _ = check_readers_and_writer(index, schema, dim, n)
  assert not errors, errors[:5]
  assert checked > 0
  for name in ("vectors", "attributes", "versions"):
    assert _on_gpu(getattr(index, name)), (name, getattr(index, name).device)
  # The final state matches the writes: every live item's row is whole.
  items = index.items()
  for i, vec in zip(items.ids, items.vectors):
    v, num = divmod(int(round(float(vec[0]))), 1000)
    assert num == int(i.decode()[1:]) % 1000
