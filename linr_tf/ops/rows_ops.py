"""Consistent reads and atomic row writes over several index variables.

    ids, attributes, vectors = read_rows([index.ids, index.attributes, index.vectors])
    write_rows([index.ids, index.attributes], rows, [new_ids, new_bits], min_rows=n)

`read_rows` (op LinrReadRows) takes the variables' locks together, so a
search never sees half of a `write_rows` (op LinrWriteRows): no torn rows. The
outputs alias the variables' buffers; a write copies a buffer first while a
reader still holds it. Unlike `tf.gather` / `scatter_update` on a variable,
neither op switches the variable to TensorFlow's copy-on-read mode (after which
every plain read copies the whole variable), so read the index's variables
through `read_rows` and write them through `write_rows` only.
"""

import contextlib
from typing import List, Sequence

import tensorflow as tf

from linr_tf.ops import _library

tf.no_gradient("LinrReadRows")
tf.no_gradient("LinrWriteRows")


def _anchor(variables) -> tf.Variable:
  """The variable the op runs beside: the first non-string one (the index
  keeps its numeric stores together, e.g. in GPU memory), else the first.
  String variables (ids) may live on another device (TensorFlow keeps strings
  in host memory): the GPU kernels read them there."""
  for v in variables:
    if v.dtype != tf.string:
      return v
  return variables[0]


def _placement(variables):
  """Where the op runs. The GPU build exempts the ops from colocation with
  their resource inputs (they read two memories), so it is said here:
  eagerly, the anchor variable's device. In a graph (a tf.function, a
  SavedModel) no device is written: the placer puts the op on the preferred
  device with a kernel when the graph runs, which is where the loader puts
  the variables (the GPU on a GPU machine, else the CPU). A device string
  would be fixed at export: a SavedModel exported on a CPU machine would read
  its GPU variables from the CPU when loaded on a GPU one (measured: every
  request failed with "Trying to access resource ... located in device GPU:0
  from device CPU:0"). tf.compat.v1.colocate_with does not help: in a
  tf.function it copies the captured handle's device.
  """
  if tf.executing_eagerly():
    return tf.device(_anchor(variables).device or "")
  return contextlib.nullcontext()


def read_rows(variables: Sequence[tf.Variable], name=None) -> List[tf.Tensor]:
  """Values of `variables`, read as one consistent snapshot."""
  variables = list(variables)
  with _placement(variables):
    out = _library.load_library().linr_read_rows(
        resources=[v.handle for v in variables],
        dtypes=[v.dtype for v in variables], name=name)
  for value, var in zip(out, variables):
    value.set_shape(var.shape)
  return list(out)


def write_rows(variables: Sequence[tf.Variable], rows, values, min_rows,
               max_wait_us: int = 50000, name=None) -> tf.Tensor:
  """Writes `values[i]` into rows `rows` of `variables[i]`, for all i at once.

  Args:
    variables: resource variables with the same number of rows R.
    rows: int64 [M] distinct row indices.
    values: values[i] is [M] + row shape of variables[i].
    min_rows: int64 scalar; the variables grow to max(min_rows, 2 R) rows
      first when min_rows > R (new rows zero / "").
    max_wait_us: how long to wait for in-flight readers before copying a
      buffer they still hold (copy-on-write) instead of writing in place.

  Returns:
    int64 scalar, the number of rows after the write.
  """
  variables = list(variables)
  values = [tf.convert_to_tensor(v, var.dtype) for v, var in zip(values, variables)]
  rows, min_rows = tf.cast(rows, tf.int64), tf.cast(min_rows, tf.int64)
  with _placement(variables):
    return _library.load_library().linr_write_rows(
        resources=[v.handle for v in variables], rows=rows, values=values,
        min_rows=min_rows, max_wait_us=int(max_wait_us), name=name)
