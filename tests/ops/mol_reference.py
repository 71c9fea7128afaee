"""Numpy (float64) reference of the Mixture-of-Logits score and its top-k,
independent of the op and of the TF layer (tests/ops/mol_top_k_test.py,
tests/gpu/mol_gpu_test.py, tests/mol_layer_test.py)."""

import numpy as np


def mol_scores_np(queries, items, gate_bias, gate_weight, softmax=True):
  """queries [B, P, d], items [N, Q, d], gate_bias [B, PQ], gate_weight [PQ, PQ]
  -> float64 [B, N]."""
  q = np.asarray(queries, np.float64)
  e = np.asarray(items, np.float64)
  b_size, p, _ = q.shape
  n, nq, _ = e.shape
  x = np.einsum("bpd,nqd->bnpq", q, e).reshape(b_size, n, p * nq)
  logits = np.asarray(gate_bias, np.float64)[:, None, :] + x @ np.asarray(gate_weight, np.float64)
  if softmax:
    logits = logits - logits.max(axis=-1, keepdims=True)
    g = np.exp(logits)
    g = g / g.sum(axis=-1, keepdims=True)
  else:
    g = logits
  return (g * x).sum(axis=-1)


def top_k_np(all_scores, passes, k):
  """(scores [B, k], indices [B, k], count [B]) of float64 scores [B, N] among
  `passes` [B, N]: score descending, ties by smaller index, NaN as -inf."""
  b_size = all_scores.shape[0]
  scores = np.full((b_size, k), -np.inf)
  indices = np.full((b_size, k), -1, np.int64)
  count = np.zeros(b_size, np.int64)
  all_scores = np.where(np.isnan(all_scores), -np.inf, all_scores)
  for b in range(b_size):
    pos = np.flatnonzero(passes[b])
    order = np.lexsort((pos, -all_scores[b, pos]))[:k]
    count[b] = len(order)
    scores[b, :len(order)] = all_scores[b, pos[order]]
    indices[b, :len(order)] = pos[order]
  return scores, indices, count


def pack_mask(passes):
  """[B, N] bool -> int32 [B, ceil(N / 32)] (bit i % 32 of word i // 32)."""
  b_size, n = passes.shape
  m = -(-n // 32)
  padded = np.zeros((b_size, m * 32), bool)
  padded[:, :n] = passes
  words = np.zeros((b_size, m), np.uint64)
  for bit in range(32):
    words |= padded[:, bit::32].astype(np.uint64) << np.uint64(bit)
  return words.astype(np.uint32).view(np.int32).reshape(b_size, m)


def assert_top_k_matches(got, want, rtol=1e-5, atol=1e-5):
  """`got` (op outputs as numpy) against `want` (top_k_np): counts equal,
  scores close, indices equal except where the reference's neighbouring
  scores differ by less than the tolerance (an order float32 cannot decide);
  exact reference ties must come out by smaller index."""
  g_scores, g_idx, g_count = got
  w_scores, w_idx, w_count = want
  np.testing.assert_array_equal(g_count, w_count)
  for b in range(len(w_count)):
    c = int(w_count[b])
    np.testing.assert_allclose(g_scores[b, :c], w_scores[b, :c], rtol=rtol, atol=atol)
    assert np.all(np.isneginf(g_scores[b, c:])) and np.all(g_idx[b, c:] == -1)
    s = w_scores[b, :c]
    for j in range(c):
      close = [t for t in (j - 1, j + 1) if 0 <= t < c and s[t] != s[j] and
               abs(s[t] - s[j]) <= atol + rtol * abs(s[j])]
      # The k-th of a full row: an item just outside the top-k (not in
      # `want`) may be within tolerance of it, so its index is not checked.
      if not close and not (j == c - 1 and c == w_scores.shape[1]):
        assert g_idx[b, j] == w_idx[b, j], (b, j, g_idx[b, :c], w_idx[b, :c])
