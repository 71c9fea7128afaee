"""Filters over bitsets and column stores in one pass: filter strings -> pass bitmap.

    columns = FilterColumns(schema.number_specs, schema.value_specs, value_id_of,
                            slot_of, numbers, value_ids)
    passing = column_pass_mask(filters, bit_keys, attributes, columns)   # FilterMask

`LinrCompileFilterColumns` compiles each filter (with "AND `__live__`"
appended) and lists the strings it needs resolved; those are looked up in the
graph: values ("attr=value") in the index's `value_id_of` table, ids of
`item_id IN (...)` in `slot_of` (the id -> slot table of live updates), so a
request's id set becomes slots without a loop over N or a string compare per
item. Unknown values and ids resolve to -1 and match nothing.
`LinrFilterMaskColumns` then evaluates bits and columns in one fused pass.
"""

from typing import NamedTuple

import tensorflow as tf

from linr_tf import ops
from linr_tf.ops import filter_ops


class FilterColumns(NamedTuple):
  """What column leaves read: specs (string [A], [C]), the two lookup tables
  and the stores numbers int64 [N, A], value_ids int32 [N, V]."""
  number_columns: object
  value_columns: object
  value_id_of: object
  slot_of: object
  numbers: object
  value_ids: object


def append_live(program):
  """Programs [B, L, row] followed by `kAny(bit 0)`, `kAnd` (deleted or empty
  slots never pass)."""
  row = program.shape[2] if program.shape[2] is not None else tf.shape(program)[2]
  any_live = (tf.one_hot(0, row, on_value=filter_ops.OP_ANY, off_value=0, dtype=tf.int32)
              + tf.one_hot(filter_ops.PROGRAM_HEADER_WORDS, row, dtype=tf.int32))
  and_row = tf.one_hot(0, row, on_value=filter_ops.OP_AND, off_value=0, dtype=tf.int32)
  suffix = tf.tile(tf.stack([any_live, and_row])[None], tf.stack([tf.shape(program)[0], 1, 1]))
  return tf.concat([program, suffix], axis=1)


def column_pass_mask(filters, bit_keys, attributes, columns: FilterColumns,
                     id_attribute: str = "item_id") -> ops.FilterMask:
  """Filter strings [B] -> FilterMask(mask [B, ceil(N / 32)], count [B])."""
  program, operands, value_lookups, id_lookups = ops.compile_filter_columns(
      filters, bit_keys, columns.number_columns, columns.value_columns,
      id_attribute=id_attribute)
  program = append_live(program)
  value_refs = tf.cast(_lookup(columns.value_id_of, value_lookups), tf.int32)
  id_slots = _lookup(columns.slot_of, id_lookups)
  return ops.filter_mask_columns(attributes, program, operands, value_refs, id_slots,
                                 columns.numbers, columns.value_ids)


def _lookup(table, keys):
  """int64 values of `keys` [B, L] (-1 when missing or when there is no table)."""
  if table is None:
    return -tf.ones(tf.shape(keys), tf.int64)
  return tf.reshape(table.lookup(tf.reshape(keys, [-1])), tf.shape(keys))

