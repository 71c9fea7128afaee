"""numpy reference of LinrAsymmetricHammingTopK (no TensorFlow, no
hypothesis: tests/gpu imports it too): inputs, exact scores with the kernel's
float32 rounding steps, and the top-k conventions."""

import numpy as np

def pack_mask(passes):
  """[B, N] bool -> int32 [B, ceil(N / 32)] (bit i % 32 of word i // 32)."""
  b_size, n = passes.shape
  m = -(-n // 32)
  padded = np.zeros((b_size, m * 32), bool)
  padded[:, :n] = passes
  return np.packbits(padded.reshape(b_size, m, 4, 8), axis=-1,
                     bitorder="little").reshape(b_size, m * 4).view("<u4").view(np.int32)


def unpack(codes):
  """int32 [..., W] -> {0, 1} int64 [..., 32 W], bit j = bit j % 32 of word j // 32."""
  flat = codes.reshape(-1, codes.shape[-1]).view(np.uint8)
  bits = np.unpackbits(flat, axis=1, bitorder="little").astype(np.int64)
  return bits.reshape(*codes.shape[:-1], codes.shape[-1] * 32)


def scores_np(planes, scales, item_codes, factors):
  """[B, N] float32 scores with the kernel's rounding steps."""
  m = item_codes.shape[1] * 32
  u = sum(unpack(planes[:, p]) << p for p in range(planes.shape[1]))   # [B, m]
  x = unpack(item_codes)                                               # [N, m]
  signs = 2 * x - 1
  a = signs.sum(1).astype(np.float32)                                  # [N]
  c = (u @ signs.T).astype(np.float32)                                 # [B, N] exact ints
  assert np.abs(u @ signs.T).max(initial=0) < 2**24
  lo = scales[:, :1].astype(np.float32)
  delta = scales[:, 1:].astype(np.float32)
  with np.errstate(invalid="ignore", over="ignore"):
    inner = (lo * a[None, :]).astype(np.float32) + (delta * c).astype(np.float32)
    return (factors[None, :].astype(np.float32) * inner.astype(np.float32)).astype(np.float32)


def top_k_np(all_scores, passes, k):
  b_size = all_scores.shape[0]
  ranked = np.where(np.isnan(all_scores), -np.inf, all_scores)
  scores = np.full((b_size, k), -np.inf, np.float32)
  indices = np.full((b_size, k), -1, np.int64)
  count = np.zeros(b_size, np.int64)
  for b in range(b_size):
    pos = np.flatnonzero(passes[b])
    order = np.lexsort((pos, -ranked[b, pos]))[:k]
    count[b] = len(order)
    scores[b, :len(order)] = ranked[b, pos[order]]
    indices[b, :len(order)] = pos[order]
  return scores, indices, count


def random_inputs(rng, b_size, n, words, bits, few_values):
  if few_values:  # a tiny pool of codes and factors: many exact ties
    pool = rng.integers(0, 2**32, (3, words), dtype=np.uint64).astype(np.uint32)
    codes = pool[rng.integers(0, 3, n)]
    factors = rng.choice(np.float32([0.5, 1.0]), n)
  else:
    codes = rng.integers(0, 2**32, (n, words), dtype=np.uint64).astype(np.uint32)
    factors = rng.uniform(0.01, 2.0, n).astype(np.float32)
  planes = rng.integers(0, 2**32, (b_size, bits, words), dtype=np.uint64).astype(np.uint32)
  scales = np.stack([rng.uniform(-1, 0, b_size), rng.uniform(0.001, 0.5, b_size)],
                    1).astype(np.float32)
  return planes.view(np.int32), scales, codes.view(np.int32), factors
