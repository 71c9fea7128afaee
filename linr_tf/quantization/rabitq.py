"""RaBitQ-like asymmetric 1-bit codes: Sign-OPORP signs, a per-item factor,
and queries quantized to a few bits.

    rq = RaBitQ(dim=64, num_bits=128, seed=0, query_bits=4)
    codes, factors = rq.encode_items(items)        # int32 [N, 4], float32 [N]
    planes, scales = rq.encode_query(queries)      # int32 [B, 4, 4], float32 [B, 2]
    found = linr_tf.ops.asymmetric_hamming_top_k(planes, scales, codes, factors, None, k=10)

Item codes are `SignOPORP` codes (same stored rotation, permutation and
signs) of the item's residual from a stored center c (FAISS's centroid; the
mean of the catalogue, `set_center`, which `ItemIndex.assign` calls; zero by
default, when the codes equal `SignOPORP`'s): b = sign(W^T (o - c)) for the
projection W [d, m] of `SignOPORP.projection_matrix`. The query keeps its
magnitudes: y = W^T q, and <o, q> = <o - c, q> + <c, q>, the last term one
number per query (`query_offset`), so centering changes no ranking, only the
variance (the residuals are smaller and less aligned with each other).

Estimator (after Gao & Long, RaBitQ, SIGMOD 2024), written for o the
residual o - c. With b in {-1, +1}^m, <W b, o> = ||W^T o||_1 > 0, and

    <o, q>  ~  f_o * <b, y>,     f_o = ||o||^2 / ||W^T o||_1   (stored per item).

Write q = <q, o^> o^ + q_perp (o^ = o / ||o||): f_o <b, y> = <o, q> +
||o|| <W b, q_perp> / <W b, o^>. For a W whose law is invariant under
rotations fixing o (Gaussian W; the randomized Hadamard rotation, permutation
and signs approximate it), reflecting q_perp flips the second term's sign and
leaves b unchanged, so its mean is 0: the estimate is unbiased over the
random W. For Gaussian W its variance is about (pi / 2) ||o||^2 ||q_perp||^2 / m
(the tests check the bias over many seeds and this bound against a float64
reference).

Query quantization to Bq bits (`query_bits` in {1, 2, 4, 8}): y_j ~ lo + delta
u_j, u_j in [0, 2^Bq): Bq >= 2 rounds to the nearest of 2^Bq levels spanning
[min y, max y]; Bq = 1 keeps signs, lo = -c, delta = 2c with c = mean |y_j|
(the least-squares scale; this shrinks estimates toward 0, so Bq = 1 ranks
but is not unbiased). The kernel then needs only popcounts:
<b, y^> = lo (2 popcount(x) - m) + delta (2 sum_p 2^p popcount(x & plane_p) - U),
U = sum_j u_j, x the code bits (custom_ops/quantization/asym_common.h).
"""

import hashlib

import tensorflow as tf

from linr_tf.quantization.sign_oporp import SignOPORP, pack_bits

QUERY_BITS = (1, 2, 4, 8)


def unpack_bits(words, num_bits: int):
  """int32 [..., num_bits / 32] packed words -> int32 {0, 1} [..., num_bits]."""
  words = tf.convert_to_tensor(words, tf.int32)
  bits = tf.bitwise.bitwise_and(
      tf.bitwise.right_shift(words[..., None], tf.range(32, dtype=tf.int32)), 1)
  return tf.reshape(bits, tf.concat([tf.shape(words)[:-1], [num_bits]], 0))


def dequantize_query(planes, scales, num_bits: int):
  """float32 [B, m] query projection y^ = lo + delta * u from (planes, scales)."""
  planes = tf.convert_to_tensor(planes, tf.int32)
  num_planes = planes.shape[1]
  if num_planes is None:
    raise ValueError("dequantize_query needs a static number of query bit planes")
  u = tf.zeros(tf.concat([tf.shape(planes)[:1], [num_bits]], 0), tf.int32)
  for p in range(int(num_planes)):
    u += tf.bitwise.left_shift(unpack_bits(planes[:, p], num_bits), p)
  scales = tf.convert_to_tensor(scales, tf.float32)
  return scales[:, :1] + scales[:, 1:] * tf.cast(u, tf.float32)


class RaBitQ(tf.Module):
  """Asymmetric 1-bit quantizer over a `SignOPORP` rotation (see module doc).

  Args:
    dim: embedding dimension d.
    num_bits: code length m, a multiple of 32 in [64, 1024].
    seed: seed of the Sign-OPORP rotation, permutation and signs.
    query_bits: Bq, bits per query coordinate, one of 1, 2, 4, 8.

  Raises:
    ValueError on a bad num_bits / dim / query_bits. Encoding raises
    InvalidArgumentError on NaN/Inf or wrong-width embeddings.
  """

  def __init__(self, dim: int, num_bits: int, seed: int = 0, query_bits: int = 4, name=None):
    super().__init__(name=name or "rabitq")
    if int(query_bits) not in QUERY_BITS:
      raise ValueError(f"query_bits must be one of {QUERY_BITS}, got {query_bits}")
    self.encoder = SignOPORP(dim, num_bits, seed, rotate=True)
    self.query_bits = int(query_bits)
    self.center = tf.Variable(tf.zeros([int(dim)]), trainable=False, name="center")

  dim = property(lambda self: self.encoder.dim)
  num_bits = property(lambda self: self.encoder.num_bits)
  num_words = property(lambda self: self.encoder.num_words)
  seed = property(lambda self: self.encoder.seed)

  @property
  def fingerprint(self) -> int:
    """int64 naming the item codes (Sign-OPORP codes of centered items, so
    not comparable with a plain `SignOPORP`'s query codes)."""
    text = f"rabitq/v1/centered/{self.encoder.fingerprint}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little", signed=True)

  def set_center(self, embeddings) -> None:
    """c = the mean of float32 [N, dim] `embeddings` (N > 0); codes encoded
    before must be encoded again."""
    x = tf.convert_to_tensor(embeddings, tf.float32)
    self.center.assign(tf.reduce_mean(x, axis=0))

  def query_offset(self, queries):
    """float32 [B]: <c, q>, added to every estimate of a query."""
    return tf.linalg.matvec(tf.convert_to_tensor(queries, tf.float32), self.center)

  def project(self, embeddings):
    """y = W^T x, float32 [N, m] (with the encoder's input checks)."""
    return self.encoder.project(embeddings)

  def encode(self, embeddings):
    """Sign codes int32 [N, m / 32] of the residuals x - c."""
    return self.encode_items(embeddings)[0]

  def encode_items(self, embeddings):
    """(codes int32 [N, m / 32], factors float32 [N]) of the residuals x - c;
    factor 0 for a zero residual."""
    x = tf.convert_to_tensor(embeddings, tf.float32)
    x = x - self.center[None, :]
    y = self.project(x)
    l1 = tf.reduce_sum(tf.abs(y), axis=1)
    sq = tf.reduce_sum(tf.square(x), axis=1)
    factors = tf.where(l1 > 0, sq / tf.where(l1 > 0, l1, 1.0), 0.0)
    return pack_bits(y > 0), factors

  def item_factors(self, embeddings):
    """float32 [N]: ||x - c||^2 / ||W^T (x - c)||_1."""
    return self.encode_items(embeddings)[1]

  def encode_query(self, queries):
    """(planes int32 [B, Bq, m / 32], scales float32 [B, 2] = (lo, delta))."""
    y = self.project(queries)
    levels = (1 << self.query_bits) - 1
    if self.query_bits == 1:
      c = tf.reduce_mean(tf.abs(y), axis=1, keepdims=True)
      lo, delta = -c, 2.0 * c
      u = tf.cast(y > 0, tf.int32)
    else:
      lo = tf.reduce_min(y, axis=1, keepdims=True)
      delta = (tf.reduce_max(y, axis=1, keepdims=True) - lo) / float(levels)
      safe = tf.where(delta > 0, delta, 1.0)
      u = tf.clip_by_value(tf.cast(tf.round((y - lo) / safe), tf.int32), 0, levels)
      u = tf.where(delta > 0, u, 0)
    planes = tf.stack([pack_bits(tf.bitwise.bitwise_and(tf.bitwise.right_shift(u, p), 1))
                       for p in range(self.query_bits)], axis=1)
    return planes, tf.concat([lo, delta], axis=1)

  def estimate(self, queries, codes, factors):
    """float32 [B, N] estimates f_o <b_o, y^_q> + <c, q> of <o, q> for every
    pair (dense, for tests)."""
    planes, scales = self.encode_query(queries)
    y = dequantize_query(planes, scales, self.num_bits)
    signs = 2.0 * tf.cast(unpack_bits(codes, self.num_bits), tf.float32) - 1.0
    scores = tf.matmul(y, signs, transpose_b=True) * tf.convert_to_tensor(factors)[None, :]
    return scores + self.query_offset(queries)[:, None]

  def memory_per_item_bytes(self) -> int:
    """Bytes of one code plus its float32 factor."""
    return 4 * self.num_words + 4

