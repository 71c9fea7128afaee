"""`compile_filter`: filter strings -> postfix filter programs (op LinrCompileFilter).

Program format (custom_ops/filter/filter_program.h): int32 [B, L, 2 + W]; row
= (opcode, 0, mask[W]); rows run in order on a boolean stack and the last value
left is the verdict. The opcode constants below mirror the header.
"""


import tensorflow as tf

from linr_tf.ops import _library

# Opcodes of filter_program.h (FilterOpcode).
OP_NOP = 0    # skipped (padding)
OP_ANY = 1    # push (bits & mask) != 0
OP_ALL = 2    # push (bits & mask) == mask
OP_AND = 3    # pop b, pop a, push a and b
OP_OR = 4     # pop b, pop a, push a or b
OP_NOT = 5    # pop a, push not a
OP_TRUE = 6   # push true
OP_FALSE = 7  # push false
OP_NUMBER_RANGE = 8  # column leaves (custom_ops/filter/filter_columns.h)
OP_VALUE_ANY = 9
OP_VALUE_ALL = 10
OP_ID_IN = 11
MAX_IDS_PER_QUERY = 10000
PROGRAM_HEADER_WORDS = 2   # opcode, reserved
MAX_PROGRAM_STACK = 64

UNKNOWN_VALUE_POLICIES = ("error", "match_none")



def compile_filter(filters, bit_keys, unknown_value: str = "error", name=None
                   ) -> tf.Tensor:
  """Compiles filter expressions against an attribute bit vocabulary.

  Language (keywords AND OR NOT IN ALL in any case; NOT > AND > OR):
  `attr = v`, `attr != v`, `attr IN (v, ...)`, `attr NOT IN (v, ...)`,
  `attr ALL (v, ...)`, `attr < x`, `attr >= x` (numeric attributes; x must be
  a bucket boundary), `NOT e`, `e AND e`, `e OR e`, parentheses. Values are
  quoted with " or ' or bare [A-Za-z0-9_.-]+. "" = no filter.

  Args:
    filters: string [B].
    bit_keys: string [NB]; bit i is bit_keys[i]: "attr=value" (categorical) or
      "attr@[lo,hi)" (numeric bucket lo <= x < hi; empty lo/hi = open end).
      Keys starting with "__" are reserved.
    unknown_value: "error" (default) or "match_none": an unknown value of a
      known attribute then matches no item.
    name: op name.

  Returns:
    program int32 [B, L, 2 + W], W = max(1, ceil(NB / 32)), L = the longest
    program in the batch; shorter ones padded with OP_NOP rows.

  Raises:
    tf.errors.InvalidArgumentError naming filter index, position and token.
  """
  if unknown_value not in UNKNOWN_VALUE_POLICIES:
    raise ValueError(f"unknown_value must be one of {UNKNOWN_VALUE_POLICIES}, "
                     f"got {unknown_value!r}")
  module = _library.load_library()
  with tf.name_scope(name or "compile_filter"):
    filters = tf.convert_to_tensor(filters, tf.string, name="filters")
    bit_keys = tf.convert_to_tensor(bit_keys, tf.string, name="bit_keys")
    return module.linr_compile_filter(filters, bit_keys, unknown_value=unknown_value)


def compile_filter_columns(filters, bit_keys, number_columns, value_columns,
                           unknown_value: str = "error", id_attribute: str = "item_id",
                           name=None):
  """`compile_filter` with column attributes (op LinrCompileFilterColumns).

  Besides bit attributes: exact numbers (`number_columns`, "name:int64" /
  "name:float64": `<`, `<=`, `>`, `>=`, `=`, `!=`, `BETWEEN a AND b` at any
  threshold), value-id attributes (`value_columns`, "name:width": `=`, `!=`,
  `IN`, `NOT IN`, `ALL`) and per-request id sets on `id_attribute`
  (`IN`, `NOT IN`, `=`, `!=`, at most 10,000 ids per filter).

  Returns:
    (program int32 [B, L, 2 + W], operands int64 [B, P, 4], value_lookups
    string [B, Lv] ("attr=value"), id_lookups string [B, Li]); the caller maps
    the lookups to value ids / slots (-1 = unknown, matching nothing) for
    `filter_mask_columns`.
  """
  if unknown_value not in UNKNOWN_VALUE_POLICIES:
    raise ValueError(f"unknown_value must be one of {UNKNOWN_VALUE_POLICIES}, "
                     f"got {unknown_value!r}")
  module = _library.load_library()
  with tf.name_scope(name or "compile_filter_columns"):
    return module.linr_compile_filter_columns(
        tf.convert_to_tensor(filters, tf.string), tf.convert_to_tensor(bit_keys, tf.string),
        tf.convert_to_tensor(number_columns, tf.string),
        tf.convert_to_tensor(value_columns, tf.string),
        unknown_value=unknown_value, id_attribute=id_attribute)
