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
