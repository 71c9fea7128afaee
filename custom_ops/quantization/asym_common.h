// Scoring rules of LinrAsymmetricHammingTopK (RaBitQ-like asymmetric 1-bit
// scores) shared by the CPU kernel (asym_cpu_scan.h) and the CUDA kernel
// (asym_gpu.cu.h); no TensorFlow dependency.
//
// An item is an m-bit sign code x (m = 32 * Wc, packed as in hamming_common.h)
// and a float factor f. A query is its projection quantized to Bq bits per
// coordinate: y_j ~ lo + delta * u_j, u_j in [0, 2^Bq), stored as Bq bit
// planes (plane p holds bit p of every u_j, each plane packed like a code).
// With b_j = 2 x_j - 1 in {-1, +1}:
//   <b, y> = lo * (2 popcount(x) - m) + delta * (2 S - U),
//   S = sum_p 2^p popcount(x AND plane_p),  U = sum_p 2^p popcount(plane_p),
// and the score is f * <b, y>. A, C below are exact integers; the float steps
// are rounded one at a time (no fused multiply-add) so that CPU and GPU give
// identical scores. Ordering is select/ordering.h's (NaN as -inf).
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_ASYM_COMMON_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_ASYM_COMMON_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"
#include "custom_ops/quantization/hamming_common.h"

namespace linr {

constexpr int kAsymMaxQueryBits = 8;

// S = sum_p 2^p popcount(code AND planes[p]) over `words` words; planes is
// [bits][words].
LINR_HOST_DEVICE LINR_FORCE_INLINE int32_t AsymPlaneDot(const uint32_t* code,
                                                        const uint32_t* planes, int bits,
                                                        int64_t words) {
  int32_t s = 0;
  for (int p = 0; p < bits; ++p) {
    int32_t c = 0;
    for (int64_t w = 0; w < words; ++w) c += Popcount32(code[w] & planes[p * words + w]);
    s += c << p;
  }
  return s;
}

// popcount of a code of `words` words.
LINR_HOST_DEVICE LINR_FORCE_INLINE int32_t AsymCodeOnes(const uint32_t* code, int64_t words) {
  int32_t c = 0;
  for (int64_t w = 0; w < words; ++w) c += Popcount32(code[w]);
  return c;
}

LINR_HOST_DEVICE LINR_FORCE_INLINE float AsymMul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

LINR_HOST_DEVICE LINR_FORCE_INLINE float AsymAdd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// The score from the integer parts: ones = popcount(x), s = AsymPlaneDot,
// u = sum_p 2^p popcount(plane_p), m = bits per code.
LINR_HOST_DEVICE LINR_FORCE_INLINE float AsymScore(int32_t ones, int32_t s, int32_t u,
                                                   int32_t m, float lo, float delta,
                                                   float factor) {
  const float a = static_cast<float>(2 * ones - m);
  const float c = static_cast<float>(2 * s - u);
  return AsymMul(factor, AsymAdd(AsymMul(lo, a), AsymMul(delta, c)));
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_ASYM_COMMON_H_
