"""Sign-OPORP: 1-bit codes from One Permutation + One Random Projection.

Encoding of x in R^d into m bits (Li & Li, OPORP; here with an optional
randomized Hadamard pre-rotation):

  1. (rotate=True) P = max(1, ceil(m / d')) randomized Hadamard rotations,
     d' = next power of two >= d: z_p = H (s_p * x) / sqrt(d'), with random
     +-1 vectors s_p; z = concat(z_1..z_P), length L = P * d'. Each z_p is an
     orthogonal transform of x (angles kept) whose coordinates look Gaussian,
     so bins of a single coordinate still behave like random projections and
     m > d gets fresh directions. (rotate=False: z = x, L = d, needs m <= d.)
  2. One permutation pi of the L coordinates and one random +-1 vector r.
  3. Bins: bin j sums r[t] * z[pi[t]] over t in [floor(j L / m), floor((j+1) L / m)).
  4. bit j = 1 if bin j > 0 else 0; bits packed little-endian into int32
     words: bit j is bit j % 32 of word j // 32 -> codes int32 [N, m / 32].

Steps 1-3 are one linear map x -> x @ W (W is [d, m]), rebuilt in-graph from
the stored variables (rotation signs, permutation, projection signs), so the
transform travels with a SavedModel and queries are encoded the same way.

Estimator. For a sign random projection, P(bit agrees) = 1 - theta / pi with
theta the angle between x and y. With `matches` agreeing bits of m,
theta_hat = pi * (1 - matches / m) and cos_est = cos(theta_hat)
(`estimate_cosine`). Agreements are ~Binomial(m, 1 - theta / pi), so the
standard error of theta_hat is about pi * sqrt(p (1 - p) / m) (<= 0.07 rad at
m = 512). The law is exact in expectation for Gaussian bins; Hadamard
coordinates and bin sums are close to that, and the tests bound the bias.
"""

import hashlib
import math

import numpy as np
import tensorflow as tf

MIN_BITS = 64
MAX_BITS = 1024


def _hadamard(n: int) -> np.ndarray:
  """Sylvester Hadamard matrix of order n (a power of two), entries +-1."""
  h = np.ones((1, 1), np.float64)
  while h.shape[0] < n:
    h = np.block([[h, h], [h, -h]])
  return h


def bin_boundaries(length: int, num_bits: int) -> np.ndarray:
  """Start of each of the num_bits bins over `length` coordinates, plus length."""
  return (np.arange(num_bits + 1, dtype=np.int64) * length) // num_bits


def pack_bits(bits):
  """bool/int [N, m] (m multiple of 32) -> int32 [N, m / 32], bit j in bit
  j % 32 of word j // 32."""
  bits = tf.cast(tf.cast(bits, tf.bool), tf.int32)
  num_bits = bits.shape[-1]
  if num_bits is None or num_bits % 32:
    raise ValueError(f"pack_bits: static last dimension must be a multiple of 32, got {num_bits}")
  grouped = tf.reshape(bits, tf.concat([tf.shape(bits)[:-1], [num_bits // 32, 32]], 0))
  shifted = tf.bitwise.left_shift(grouped, tf.range(32, dtype=tf.int32))
  return tf.reduce_sum(shifted, axis=-1)  # disjoint bits: the sum is the OR


def estimate_cosine(matches, num_bits):
  """cos(pi * (1 - matches / m)): cosine estimate from matching bits."""
  matches = tf.convert_to_tensor(matches, tf.float32)
  return tf.cos(math.pi * (1.0 - matches / float(num_bits)))


class SignOPORP(tf.Module):
  """Seeded Sign-OPORP encoder: float32 [N, dim] -> int32 codes [N, num_bits/32].

  Args:
    dim: embedding dimension d.
    num_bits: code length m, a multiple of 32 in [64, 1024].
    seed: seed of the permutation and signs.
    rotate: randomized Hadamard pre-rotation (see module doc); False is plain
      OPORP and requires num_bits <= dim.

  Raises:
    ValueError on a bad num_bits / dim. Encoding raises InvalidArgumentError
    on NaN/Inf embeddings or a wrong embedding width.
  """

  def __init__(self, dim: int, num_bits: int, seed: int = 0, rotate: bool = True,
               name=None):
    super().__init__(name=name or "sign_oporp")
    if dim <= 0:
      raise ValueError(f"dim must be positive, got {dim}")
    if num_bits % 32 != 0 or not MIN_BITS <= num_bits <= MAX_BITS:
      raise ValueError(f"num_bits must be a multiple of 32 in [{MIN_BITS}, {MAX_BITS}], "
                       f"got {num_bits}")
    if not rotate and num_bits > dim:
      raise ValueError(f"rotate=False needs num_bits <= dim, got num_bits={num_bits} > "
                       f"dim={dim}; use rotate=True")
    self.dim = int(dim)
    self.num_bits = int(num_bits)
    self.num_words = self.num_bits // 32
    self.seed = int(seed)
    self.rotate = bool(rotate)
    rng = np.random.default_rng(self.seed)
    if rotate:
      self.padded_dim = 1 << max(0, (self.dim - 1).bit_length())
      self.num_rotations = max(1, -(-self.num_bits // self.padded_dim))
      length = self.padded_dim * self.num_rotations
      rot = rng.choice(np.float32([-1.0, 1.0]), (self.num_rotations, self.padded_dim))
      self.rotation_signs = tf.Variable(rot, trainable=False, name="rotation_signs")
      h = _hadamard(self.padded_dim)[:self.dim] / math.sqrt(self.padded_dim)
      self._hadamard = tf.constant(h, tf.float32)  # rows of H for the real dims
    else:
      self.padded_dim = self.dim
      self.num_rotations = 0
      length = self.dim
      self.rotation_signs = None
      self._hadamard = None
    self.length = length
    self.permutation = tf.Variable(rng.permutation(length).astype(np.int32), trainable=False,
                                   name="permutation")
    self.signs = tf.Variable(rng.choice(np.float32([-1.0, 1.0]), length), trainable=False,
                             name="signs")
    seg = np.repeat(np.arange(self.num_bits, dtype=np.int32),
                    np.diff(bin_boundaries(length, self.num_bits)))
    self._segments = tf.constant(seg)

  def projection_matrix(self):
    """W float32 [dim, num_bits]: x @ W are the bin values (before sign)."""
    if self.rotate:
      # [P, d, d']: rows of diag(s_p) H / sqrt(d') restricted to the real dims.
      blocks = self.rotation_signs[:, :self.dim, None] * self._hadamard[None]
      z = tf.reshape(tf.transpose(blocks, [1, 0, 2]), [self.dim, self.length])
    else:
      z = tf.eye(self.dim, dtype=tf.float32)
    cols = tf.gather(z, self.permutation, axis=1) * self.signs[None, :]
    binned = tf.math.segment_sum(tf.transpose(cols), self._segments)
    return tf.reshape(tf.transpose(binned), [self.dim, self.num_bits])

  def project(self, embeddings):
    """Bin values float32 [N, num_bits], with input checks."""
    x = tf.convert_to_tensor(embeddings, tf.float32)
    if x.shape.rank is not None and x.shape.rank != 2:
      raise ValueError(f"SignOPORP: embeddings must have rank 2, got shape {x.shape}")
    if x.shape.rank == 2 and x.shape[1] is not None and x.shape[1] != self.dim:
      raise tf.errors.InvalidArgumentError(
          None, None, f"SignOPORP: embedding width mismatch: encoder dim={self.dim}, "
          f"got {x.shape[1]}")
    with tf.control_dependencies([
        tf.debugging.assert_equal(tf.shape(x)[1], self.dim,
                                  message=f"SignOPORP: embedding width must be {self.dim}")
    ]):
      x = tf.debugging.check_numerics(x, "SignOPORP: embeddings contain NaN or Inf")
    return tf.matmul(x, self.projection_matrix())

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
  def encode(self, embeddings):
    """Packed codes int32 [N, num_bits / 32] of float32 [N, dim] embeddings."""
    return pack_bits(self.project(embeddings) > 0)

  def __call__(self, embeddings):
    return self.encode(tf.convert_to_tensor(embeddings, tf.float32))

  def estimate_cosine(self, matches):
    """Cosine estimate from matching-bit counts (e.g. hamming_top_k scores)."""
    return estimate_cosine(matches, self.num_bits)

  @property
  def fingerprint(self) -> int:
    """int64 naming this encoder (dim, m, seed, rotate): codes made by encoders
    with different fingerprints are not comparable."""
    text = f"sign-oporp/v1/dim={self.dim}/m={self.num_bits}/seed={self.seed}/rotate={self.rotate}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little", signed=True)

  def memory_per_item_bytes(self) -> int:
    """Bytes of one packed code."""
    return 4 * self.num_words
