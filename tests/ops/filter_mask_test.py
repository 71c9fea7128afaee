"""LinrFilterMask against a numpy evaluator of filter programs."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from linr_tf import ops  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, database=None)
NOP, ANY, ALL, AND, OR, NOT, TRUE, FALSE = range(8)


# ----------------------------------------------------------------- reference
def eval_program_np(program, item_bits):
  """[N] bool verdicts of one program [L, 2 + W] over item_bits [N, W]."""
  n = item_bits.shape[0]
  stack = []
  for row in program:
    op, m = row[0], row[2:]
    if op == ANY:
      stack.append(np.any((item_bits & m[None, :]) != 0, axis=1))
    elif op == ALL:
      stack.append(np.all((item_bits & m[None, :]) == m[None, :], axis=1))
    elif op in (AND, OR):
      b, a = stack.pop(), stack.pop()
      stack.append(a & b if op == AND else a | b)
    elif op == NOT:
      stack.append(~stack.pop())
    elif op in (TRUE, FALSE):
      stack.append(np.full(n, op == TRUE))
  assert len(stack) == 1
  return stack[0]


def unpack_mask(mask, n):
  """int32 [B, M] -> bool [B, M * 32] (bit i % 32 of word i // 32)."""
  words = mask.view(np.uint32)
  bits = (words[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1
  return bits.reshape(mask.shape[0], mask.shape[1] * 32).astype(bool)


def random_program(rng, num_words, max_leaves):
  """A random valid postfix program, as a list of rows, with kNop padding."""
  def leaf():
    op = rng.choice([ANY, ALL, TRUE, FALSE], p=[0.5, 0.3, 0.1, 0.1])
    m = np.zeros(num_words, np.uint32)
    if op in (ANY, ALL):
      for _ in range(rng.integers(0, 4)):
        bit = rng.integers(0, 32 * num_words)
        m[bit // 32] |= np.uint32(1) << np.uint32(bit % 32)
    return [[op, 0] + list(m.view(np.int32))]

  def tree(leaves):
    if leaves == 1:
      rows = leaf()
    else:
      left = rng.integers(1, leaves)
      rows = tree(left) + tree(leaves - left)
      rows.append([rng.choice([AND, OR]), 0] + [0] * num_words)
    if rng.random() < 0.2:
      rows.append([NOT, 0] + [0] * num_words)
    return rows

  rows = tree(int(rng.integers(1, max_leaves + 1)))
  for _ in range(rng.integers(0, 3)):  # kNop rows anywhere
    rows.insert(int(rng.integers(0, len(rows) + 1)), [NOP, 0] + [0] * num_words)
  return rows


def batch_programs(programs, num_words):
  length = max(len(p) for p in programs)
  out = np.zeros((len(programs), length, 2 + num_words), np.int32)
  for b, rows in enumerate(programs):
    out[b, :len(rows)] = rows
  return out


def check(item_bits, program):
  n = item_bits.shape[0]
  mask, count = ops.filter_mask(item_bits, program)
  mask, count = mask.numpy(), count.numpy()
  assert mask.shape == (program.shape[0], -(-n // 32)) and count.shape == (program.shape[0],)
  got = unpack_mask(mask, n)
  assert not got[:, n:].any()  # bits past N are 0
  for b in range(program.shape[0]):
    expected = eval_program_np(program[b], item_bits)
    np.testing.assert_array_equal(got[b, :n], expected)
    assert count[b] == expected.sum()
  return mask, count


# --------------------------------------------------------------------- tests
@SETTINGS
@given(b_size=st.integers(0, 6), n=st.integers(0, 400), num_words=st.integers(1, 3),
       density=st.sampled_from([0.05, 0.3, 0.8]), max_leaves=st.integers(1, 6),
       duplicate=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_matches_numpy(b_size, n, num_words, density, max_leaves, duplicate, seed):
  rng = np.random.default_rng(seed)
  bits = rng.random((n, 32 * num_words)) < density
  item_bits = np.packbits(bits.reshape(n, num_words, 4, 8)[..., ::-1], axis=-1)
  item_bits = item_bits.reshape(n, num_words, 4).view(np.uint32).reshape(n, num_words)
  item_bits = item_bits.view(np.int32)
  programs = [random_program(rng, num_words, max_leaves) for _ in range(b_size)]
  if duplicate and b_size > 1:
    programs[-1] = list(programs[0])  # identical programs are evaluated once
  program = (batch_programs(programs, num_words) if programs
             else np.zeros((0, 1, 2 + num_words), np.int32))
  check(item_bits, program)


def test_portable_path_identical(monkeypatch):
  rng = np.random.default_rng(3)
  n, num_words = 5000, 2
  item_bits = rng.integers(-2**31, 2**31, (n, num_words), dtype=np.int64).astype(np.int32)
  program = batch_programs([random_program(rng, num_words, 5) for _ in range(7)], num_words)
  fast = check(item_bits, program)
  monkeypatch.setenv("LINR_CPU_ISA", "portable")
  portable = check(item_bits, program)
  for a, b in zip(fast, portable):
    np.testing.assert_array_equal(a, b)


def test_large_n_shared_program():
  rng = np.random.default_rng(4)
  n = 100_003  # several chunks, a partial last chunk and word
  item_bits = (rng.random((n, 1)) < 0.5).astype(np.int32) | 4
  rows = [[ANY, 0, 1], [NOT, 0, 0], [ALL, 0, 4], [AND, 0, 0]]
  program = batch_programs([rows] * 5 + [[[TRUE, 0, 0]]], 1)
  mask, count = check(item_bits, program)
  assert count[5] == n
  np.testing.assert_array_equal(mask[0], mask[4])


def test_empty_inputs():
  mask, count = ops.filter_mask(np.zeros((0, 1), np.int32), [[[TRUE, 0, 0]]])
  assert mask.shape == (1, 0) and count.numpy().tolist() == [0]
  mask, count = ops.filter_mask(np.ones((40, 1), np.int32), np.zeros((0, 1, 3), np.int32))
  assert mask.shape == (0, 2) and count.shape == (0,)


def test_static_shape_in_graph():
  @tf.function
  def run(item_bits, program):
    return ops.filter_mask(item_bits, program)
  out = run.get_concrete_function(tf.TensorSpec([70, 2], tf.int32),
                                  tf.TensorSpec([3, None, 4], tf.int32))
  assert out.structured_outputs.mask.shape.as_list() == [3, 3]
  assert out.structured_outputs.count.shape.as_list() == [3]


GOOD = [[ANY, 0, 1]]
ERROR_CASES = {
    "bad_opcode": ([GOOD, [[99, 0, 1]]], "query 1: filter program has an unknown opcode"),
    # Opcodes 8-11 are column leaves: LinrFilterMaskColumns only.
    "column_leaf": ([GOOD, [[9, 0, 1]]], "the program of query 1 has column leaves"),
    "underflow": ([[[ANY, 0, 1], [AND, 0, 0]], GOOD], "query 0: filter program stack underflow"),
    "not_underflow": ([GOOD, GOOD, [[NOT, 0, 0]]], "query 2: filter program stack underflow"),
    "two_values": ([GOOD, [[ANY, 0, 1], [ANY, 0, 2]]],
                   "query 1: filter program must leave exactly one value"),
    "empty": ([GOOD, [[NOP, 0, 0]]], "query 1: filter program must leave exactly one value"),
    "overflow": ([[[TRUE, 0, 0]] * 65 + [[AND, 0, 0]] * 64],
                 "query 0: filter program stack overflow"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_invalid_programs(case):
  programs, message = ERROR_CASES[case]
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
    ops.filter_mask(np.ones((10, 1), np.int32), batch_programs(programs, 1))


def test_shape_errors():
  with pytest.raises(tf.errors.InvalidArgumentError, match="words W mismatch"):
    ops.filter_mask(np.ones((10, 2), np.int32), batch_programs([GOOD], 1))
  with pytest.raises(tf.errors.InvalidArgumentError, match="program must have rank 3"):
    ops.filter_mask(np.ones((10, 1), np.int32), np.ones((2, 3), np.int32))
  with pytest.raises(tf.errors.InvalidArgumentError, match="item_bits must have rank 2"):
    ops.filter_mask(np.ones((10,), np.int32), batch_programs([GOOD], 1))
