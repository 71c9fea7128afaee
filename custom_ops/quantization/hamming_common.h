// Scoring rules of LinrHammingTopK shared by the CPU kernel and the CUDA
// kernel (hamming_gpu.cu.h) (no TensorFlow dependency).
//
// Codes are m = 32 * Wc bits packed little-endian into int32 words: bit j of a
// code is bit j % 32 of word j / 32. The score of an item is the number of
// matching bits, m - popcount(query XOR item), an integer in [0, m] returned
// as float32. Ordering is that of select/ordering.h (score descending, ties by
// smaller item index).
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_COMMON_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_COMMON_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace linr {

LINR_HOST_DEVICE LINR_FORCE_INLINE int Popcount32(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

LINR_HOST_DEVICE LINR_FORCE_INLINE int Popcount64(uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __popcll(x);
#else
  return __builtin_popcountll(x);
#endif
}

// Number of differing bits between two codes of `words` 32-bit words.
LINR_HOST_DEVICE LINR_FORCE_INLINE int HammingDistance(const uint32_t* a, const uint32_t* b,
                                                       int64_t words) {
  int dist = 0;
  for (int64_t w = 0; w < words; ++w) dist += Popcount32(a[w] ^ b[w]);
  return dist;
}

// Matching bits (the op's score) of two codes of `words` words.
LINR_HOST_DEVICE LINR_FORCE_INLINE int MatchingBits(const uint32_t* a, const uint32_t* b,
                                                    int64_t words) {
  return static_cast<int>(32 * words) - HammingDistance(a, b, words);
}

// Bits of mask word w that name items < num_items (bits past N are ignored).
LINR_HOST_DEVICE LINR_FORCE_INLINE uint32_t HammingValidBits(int64_t w, int64_t num_items) {
  const int64_t left = num_items - w * 32;
  return left >= 32 ? 0xFFFFFFFFu : ((1u << left) - 1u);
}

// Sort key of (score, index) used by the CUDA kernel's selection: a larger key
// ranks first under RanksBefore (select/ordering.h: score descending, ties
// by smaller index) for scores in [0, 2^31) and indices in [0, 2^32). High 32
// bits: the score; low 32 bits: ~index. Keys of distinct items are distinct.
LINR_HOST_DEVICE LINR_FORCE_INLINE uint64_t HammingKey(int score, int64_t index) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(score)) << 32) |
         static_cast<uint64_t>(~static_cast<uint32_t>(index));
}
LINR_HOST_DEVICE LINR_FORCE_INLINE int HammingKeyScore(uint64_t key) {
  return static_cast<int>(key >> 32);
}
LINR_HOST_DEVICE LINR_FORCE_INLINE int32_t HammingKeyIndex(uint64_t key) {
  return static_cast<int32_t>(~static_cast<uint32_t>(key));
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_COMMON_H_
