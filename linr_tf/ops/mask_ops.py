"""`filter_mask`: compiled filter programs -> per-query pass bitmasks (op LinrFilterMask)."""

import collections

import tensorflow as tf

from linr_tf.ops import _library

FilterMask = collections.namedtuple("FilterMask", ["mask", "count"])


def filter_mask(item_bits, program, name=None) -> FilterMask:
  """Evaluates one filter program per query against every item's bitset.

  Args:
    item_bits: int32 [N, W] attribute bitsets.
    program: int32 [B, L, 2 + W] postfix programs (custom_ops/filter/
      filter_program.h), e.g. from `compile_filter`.
    name: op name.

  Returns:
    FilterMask(mask int32 [B, ceil(N / 32)], count int32 [B]): bit i % 32 of
    mask[b, i // 32] is set when item i passes program b; count[b] is the
    number of passing items.

  Raises:
    tf.errors.InvalidArgumentError on a W mismatch or an invalid program
    (message names the query index).
  """
  module = _library.load_library()
  with tf.name_scope(name or "filter_mask"):
    item_bits = tf.convert_to_tensor(item_bits, tf.int32, name="item_bits")
    program = tf.convert_to_tensor(program, tf.int32, name="program")
    mask, count = module.linr_filter_mask(item_bits, program)
  return FilterMask(mask, count)


def filter_mask_columns(item_bits, program, operands, value_refs, id_slots, numbers,
                        value_ids, name=None) -> FilterMask:
  """`filter_mask` over bitsets and column stores in one pass (op
  LinrFilterMaskColumns): programs of `compile_filter_columns`.

  Args:
    item_bits: int32 [N, W]; program: int32 [B, L, 2 + W]; operands: int64
      [B, P, 4]; value_refs: int32 [B, Lv] value ids of the value lookups (-1 =
      unknown); id_slots: int64 [B, Li] slots of the id lookups (-1 = none);
      numbers: int64 [N, A]; value_ids: int32 [N, V].
  """
  module = _library.load_library()
  with tf.name_scope(name or "filter_mask_columns"):
    mask, count = module.linr_filter_mask_columns(
        tf.convert_to_tensor(item_bits, tf.int32), tf.convert_to_tensor(program, tf.int32),
        tf.convert_to_tensor(operands, tf.int64), tf.convert_to_tensor(value_refs, tf.int32),
        tf.convert_to_tensor(id_slots, tf.int64), tf.convert_to_tensor(numbers, tf.int64),
        tf.convert_to_tensor(value_ids, tf.int32))
  return FilterMask(mask, count)
