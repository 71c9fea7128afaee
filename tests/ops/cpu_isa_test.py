"""Every CPU instruction-set path of the CPU ops gives the same bits.

LinrMaskedTopK / LinrPrefilterTopK (fp32, fp16, bf16), LinrHammingTopK
(several code widths) and LinrFilterMask run under each path the CPU has
($LINR_CPU_ISA = portable, popcnt, avx2, avx512; the variable is read on
every call, common/cpu_isa.h) and must equal the portable path bit for bit
and an independent numpy reference (float64 / brute force). Paths the CPU
lacks are skipped with the reason (e.g. AVX-512 on Zen 3); where the CPU has
them (Zen 4, Sapphire Rapids) they run. Ops are pinned to /CPU:0, so on the
GPU machine (GPU build of the library) this still tests the CPU kernels:
  source bench/gpu/device_tf_setup.sh && python3 -m pytest tests/ops/cpu_isa_test.py -q --noconftest
"""

import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf import ops  # noqa: E402

DTYPES = {"float32": tf.float32, "float16": tf.float16, "bfloat16": tf.bfloat16}
TOP_K_OPS = {"mask": ops.masked_top_k, "prefilter": ops.prefilter_top_k}
NOP, ANY, ALL, AND, OR, NOT, TRUE, FALSE = range(8)


# ------------------------------------------------------------ the CPU's paths
def cpu_flags():
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("flags"):
          return set(line.split(":", 1)[1].split())
  except OSError:
    pass
  return set()


FLAGS = cpu_flags()
# What each path needs (common/cpu_isa.h); VPOPCNTDQ only for Hamming's.
NEEDS = {
    "popcnt": {"popcnt"},
    "avx2": {"popcnt", "avx2", "fma", "f16c", "bmi2"},
    "avx512": {"popcnt", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512vl",
               "avx512dq"},
}
PATHS = ["popcnt", "avx2", "avx512"]


def require(isa, extra=()):
  missing = sorted((NEEDS[isa] | set(extra)) - FLAGS)
  if missing:
    pytest.skip(f"this CPU has no {isa} path (missing flags: {', '.join(missing)})")


@contextlib.contextmanager
def cpu_isa(value):
  old = os.environ.get("LINR_CPU_ISA")
  os.environ["LINR_CPU_ISA"] = value
  try:
    yield
  finally:
    if old is None:
      del os.environ["LINR_CPU_ISA"]
    else:
      os.environ["LINR_CPU_ISA"] = old


def assert_same(a, b, what):
  for x, y, name in zip(a, b, ("scores", "indices", "count")):
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == y.shape, (what, name)
    # Bit for bit (NaN / -inf / -0.0 included).
    np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8), err_msg=f"{what} {name}")


# ----------------------------------------------------------------- reference
def pack_mask(passes):
  """[B, N] bool -> int32 [B, ceil(N / 32)] (bit i % 32 of word i // 32)."""
  b_size, n = passes.shape
  m = -(-n // 32)
  padded = np.zeros((b_size, m * 32), bool)
  padded[:, :n] = passes
  return np.packbits(padded.reshape(b_size, m, 4, 8), axis=-1,
                     bitorder="little").reshape(b_size, m * 4).view("<u4").view(np.int32)


def top_k_np(scores_all, passes, k):
  """(scores [B, k], indices, count) of [B, N] float64 scores: score desc, index asc."""
  b_size = scores_all.shape[0]
  scores = np.full((b_size, k), -np.inf)
  indices = np.full((b_size, k), -1, np.int64)
  count = np.zeros(b_size, np.int64)
  for b in range(b_size):
    pos = np.flatnonzero(passes[b])
    order = np.lexsort((pos, -scores_all[b, pos]))[:k]
    count[b] = len(order)
    scores[b, :len(order)] = scores_all[b, pos[order]]
    indices[b, :len(order)] = pos[order]
  return scores, indices, count


# --------------------------------------------------------------------- top-k
# (B, N, d, pass rate, k): B = 1 (single-query kernel), B not a multiple of 4,
# 16, 256; d not a multiple of 8 (tail lanes); N not a multiple of 32; dense
# and sparse pass rates (streamed and compacted prefilter chunks); k = 4096.
TOPK_CASES = [
    (1, 4999, 37, 1.0, 100),
    (1, 3001, 128, 0.02, 10),
    (5, 4999, 128, 0.4, 50),
    (16, 3001, 100, 0.05, 10),
    (256, 1003, 24, 0.5, 5),
    (4, 9001, 16, 0.9, 4096),
]


def topk_case(seed, b_size, n, d, rate, integer_valued):
  rng = np.random.default_rng(seed)
  if integer_valued:  # exact in every dtype and order: exact ties, exact reference
    queries = rng.integers(-2, 3, (b_size, d)).astype(np.float32)
    items = rng.integers(-2, 3, (n, d)).astype(np.float32)
  else:
    queries = rng.standard_normal((b_size, d)).astype(np.float32)
    items = rng.standard_normal((n, d)).astype(np.float32)
  passes = rng.random((b_size, n)) < rate
  return queries, items, passes


def run_topk(strategy, queries, items, mask, k):
  with tf.device("/CPU:0"):  # the CPU kernels, also on a machine with a GPU
    s, i, c = TOP_K_OPS[strategy](queries, items, mask, k)
  return s.numpy(), i.numpy(), c.numpy()


def check_topk_reference(got, queries, items64, passes, k, exact):
  scores, indices, count = got
  all_scores = queries.astype(np.float64) @ items64.T  # [B, N]
  ref_s, ref_i, ref_c = top_k_np(all_scores, passes, k)
  np.testing.assert_array_equal(count, ref_c)
  if exact:
    np.testing.assert_array_equal(indices, ref_i)
    np.testing.assert_array_equal(scores, ref_s.astype(np.float32))
    return
  for b in range(queries.shape[0]):
    n_valid = count[b]
    idx = indices[b, :n_valid]
    assert np.all(indices[b, n_valid:] == -1) and np.all(np.isneginf(scores[b, n_valid:]))
    assert len(set(idx.tolist())) == n_valid and np.all(passes[b, idx])
    np.testing.assert_allclose(scores[b, :n_valid], all_scores[b, idx], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(scores[b, :n_valid], ref_s[b, :n_valid], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_top_k_paths_bit_identical(isa, dtype):
  require(isa)
  for c, (b_size, n, d, rate, k) in enumerate(TOPK_CASES):
    for integer_valued in (False, True):
      queries, items, passes = topk_case(100 * c + integer_valued, b_size, n, d, rate,
                                         integer_valued)
      x = tf.cast(items, DTYPES[dtype])
      items64 = tf.cast(x, tf.float64).numpy()
      mask = pack_mask(passes)
      for strategy in TOP_K_OPS:
        with cpu_isa("portable"):
          want = run_topk(strategy, queries, x, mask, k)
        with cpu_isa(isa):
          got = run_topk(strategy, queries, x, mask, k)
        what = f"{strategy} {dtype} {isa} B={b_size} N={n} d={d} rate={rate} k={k}"
        assert_same(got, want, what)
        check_topk_reference(got, queries, items64, passes, k, exact=integer_valued)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_top_k_unset_is_best_path(dtype):
  # No $LINR_CPU_ISA: the best path, still equal to the portable one.
  queries, items, passes = topk_case(9, 7, 2000, 50, 0.3, False)
  x = tf.cast(items, DTYPES[dtype])
  mask = pack_mask(passes)
  old = os.environ.pop("LINR_CPU_ISA", None)
  try:
    best = run_topk("prefilter", queries, x, mask, 20)
  finally:
    if old is not None:
      os.environ["LINR_CPU_ISA"] = old
  with cpu_isa("portable"):
    want = run_topk("prefilter", queries, x, mask, 20)
  assert_same(best, want, f"unset {dtype}")


# ------------------------------------------------------------------- Hamming
def matching_bits_np(query_codes, item_codes):
  qb = np.unpackbits(query_codes.view(np.uint8), axis=1)
  ib = np.unpackbits(item_codes.view(np.uint8), axis=1)
  return (qb[:, None, :] == ib[None, :, :]).sum(-1)


def run_hamming(query_codes, item_codes, mask, k):
  with tf.device("/CPU:0"):
    s, i, c = ops.hamming_top_k(query_codes, item_codes, mask, k)
  return s.numpy(), i.numpy(), c.numpy()


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("words", [1, 2, 3, 4, 8, 16, 32])
def test_hamming_paths_bit_identical(isa, words):
  require(isa)
  rng = np.random.default_rng(words)
  n = 3001 if words <= 8 else 1003
  # Codes from a small pool with a few flipped bits: many exact ties.
  pool = rng.integers(0, 2**32, (6, words), dtype=np.uint64).astype(np.uint32)
  flips = (rng.random((n, words)) < 0.3).astype(np.uint32) << rng.integers(0, 32, (n, words)
                                                                            ).astype(np.uint32)
  item_codes = (pool[rng.integers(0, 6, n)] ^ flips).view(np.int32)
  for b_size, rate, k in [(1, 1.0, 50), (1, 0.03, 7), (4, 0.5, 20), (16, 0.9, 3),
                          (9, 0.3, 4096)]:
    query_codes = rng.integers(0, 2**32, (b_size, words), dtype=np.uint64).astype(
        np.uint32).view(np.int32)
    passes = rng.random((b_size, n)) < rate
    mask = pack_mask(passes)
    with cpu_isa("portable"):
      want = run_hamming(query_codes, item_codes, mask, k)
    with cpu_isa(isa):
      got = run_hamming(query_codes, item_codes, mask, k)
    assert_same(got, want, f"hamming {isa} words={words} B={b_size} rate={rate} k={k}")
    ref_s, ref_i, ref_c = top_k_np(matching_bits_np(query_codes, item_codes).astype(np.float64),
                                   passes, k)
    np.testing.assert_array_equal(got[2], ref_c)
    np.testing.assert_array_equal(got[1], ref_i)
    np.testing.assert_array_equal(got[0], ref_s.astype(np.float32))


# --------------------------------------------------------------- filter mask
def eval_program_np(program, item_bits):
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
  return stack[0]


def random_program(rng, num_words, leaves):
  rows = []
  for j in range(leaves):
    op = ANY if rng.random() < 0.6 else ALL
    m = np.zeros(num_words, np.uint32)
    for _ in range(rng.integers(1, 4)):
      bit = rng.integers(0, 32 * num_words)
      m[bit // 32] |= np.uint32(1) << np.uint32(bit % 32)
    rows.append([op, 0] + list(m.view(np.int32)))
    if rng.random() < 0.3:
      rows.append([NOT, 0] + [0] * num_words)
    if j > 0:
      rows.append([AND if rng.random() < 0.5 else OR, 0] + [0] * num_words)
  return rows


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("num_words", [1, 2, 3])
def test_filter_mask_paths_bit_identical(isa, num_words):
  require(isa)
  rng = np.random.default_rng(num_words)
  n = 5000 + 17  # not a multiple of 32 or 64
  item_bits = (rng.random((n, 32 * num_words)) < 0.3)
  packed = np.zeros((n, num_words), np.uint32)
  for bit in range(32 * num_words):
    packed[:, bit // 32] |= item_bits[:, bit].astype(np.uint32) << np.uint32(bit % 32)
  programs = [random_program(rng, num_words, int(rng.integers(1, 5))) for _ in range(7)]
  programs.append(list(programs[0]))  # identical programs are evaluated once
  length = max(len(p) for p in programs)
  program = np.zeros((len(programs), length, 2 + num_words), np.int32)
  for b, rows in enumerate(programs):
    program[b, :len(rows)] = rows
  with cpu_isa("portable"), tf.device("/CPU:0"):
    want = [t.numpy() for t in ops.filter_mask(packed.view(np.int32), program)]
  with cpu_isa(isa), tf.device("/CPU:0"):
    got = [t.numpy() for t in ops.filter_mask(packed.view(np.int32), program)]
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)
  words = got[0].view(np.uint32)
  bits = ((words[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1).reshape(
      len(programs), -1).astype(bool)
  assert not bits[:, n:].any()
  for b in range(len(programs)):
    expected = eval_program_np(program[b], packed.view(np.int32))
    np.testing.assert_array_equal(bits[b, :n], expected)
    assert got[1][b] == expected.sum()
