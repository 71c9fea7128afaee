"""`compile_filter`: filter strings -> clause bitsets (op LinrCompileFilter)."""

import collections

import tensorflow as tf

from linr_tf.ops import _library

CompiledFilter = collections.namedtuple("CompiledFilter", ["clauses", "num_clauses"])

UNKNOWN_VALUE_POLICIES = ("error", "match_none")


def compile_filter(filters, bit_keys, unknown_value: str = "error", name=None
                   ) -> CompiledFilter:
  """Compiles filter expressions against an attribute bit vocabulary.

  Language: `attr = value`, `attr IN (v1, v2, ...)` joined by AND (keywords in
  any case; values quoted with " or ', or bare [A-Za-z0-9_.-]+); "" = no filter.

  Args:
    filters: string [B].
    bit_keys: string [NB]; bit i means key bit_keys[i] = "attr=value"; keys
      starting with "__" are reserved.
    unknown_value: "error" (default) or "match_none": an unknown value of a
      known attribute then contributes no bit.
    name: op name.

  Returns:
    CompiledFilter(clauses int32 [B, C, W], num_clauses int32 [B]) with
    W = max(1, ceil(NB / 32)). Item bitset x passes filter b iff for all
    c < num_clauses[b], x & clauses[b, c] has a nonzero word.

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
    clauses, num_clauses = module.linr_compile_filter(
        filters, bit_keys, unknown_value=unknown_value)
  return CompiledFilter(clauses, num_clauses)
