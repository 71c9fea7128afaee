// Mixture-of-Logits scoring shared by the CPU and CUDA kernels of LinrMoLTopK
// (no TensorFlow dependency; LINR_HOST_DEVICE).
//
// For a query with P embeddings q_p [d] and an item with Q embeddings e_q [d]:
//   x[p * Q + q] = <q_p, e_q>                       (float32, canonical order)
//   l[j]         = bias[j] + sum_i x[i] * weight[i * PQ + j]
//   g            = softmax(l)  (or g = l when `softmax` is false)
//   score        = sum_j g[j] * x[j]
// `bias` [PQ] is the per-query part of the gate (an MLP over the query's
// embeddings, run once per query outside the scan and broadcast over items);
// `weight` [PQ, PQ] the item-dependent part, linear in the P x Q dot products,
// applied inside the scan. Why split: the query MLP's cost (thousands of
// multiply-adds) would be paid N times per query inside the scan, while
// its result depends on the query only; the dot-product term costs PQ^2
// multiply-adds per item, below the P Q d of the dots themselves for PQ <= d.
//
// Dot products use one evaluation order on every path (like topk_cpu.h):
// 8 partial sums s[t] over j = t, t + 8, ... (zero-padded), reduced as
// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)).
#ifndef LINR_CUSTOM_OPS_MOL_MOL_COMMON_H_
#define LINR_CUSTOM_OPS_MOL_MOL_COMMON_H_

#include <cstdint>
#include <cstring>

#include "custom_ops/common/host_device.h"

namespace linr {
namespace mol {

constexpr int kMaxComponents = 8;                              // P, Q <= 8
constexpr int kMaxPairs = kMaxComponents * kMaxComponents;     // PQ <= 64
constexpr int kLanes = 8;

LINR_HOST_DEVICE LINR_FORCE_INLINE float BitsToFloat(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}

// IEEE half (bits) -> float32, exact.
LINR_HOST_DEVICE LINR_FORCE_INLINE float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return BitsToFloat(sign | 0x7f800000u | (mant << 13));
  return BitsToFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Element loaders of the item store, by storage type.
struct LoadF32 {
  using Storage = float;
  LINR_HOST_DEVICE LINR_FORCE_INLINE static float Load(const float* p, int64_t i) { return p[i]; }
};
struct LoadF16 {
  using Storage = uint16_t;
  LINR_HOST_DEVICE LINR_FORCE_INLINE static float Load(const uint16_t* p, int64_t i) {
    return HalfToFloat(p[i]);
  }
};
struct LoadBF16 {
  using Storage = uint16_t;
  LINR_HOST_DEVICE LINR_FORCE_INLINE static float Load(const uint16_t* p, int64_t i) {
    return BitsToFloat(static_cast<uint32_t>(p[i]) << 16);
  }
};

LINR_HOST_DEVICE LINR_FORCE_INLINE float ReduceLanes(const float* s) {
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Canonical dot product of float32 a [d] and float32 b [d].
LINR_HOST_DEVICE LINR_FORCE_INLINE float Dot(const float* a, const float* b, int64_t d) {
  float s[kLanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t j = 0;
  for (; j + kLanes <= d; j += kLanes) {
    for (int t = 0; t < kLanes; ++t) s[t] = fmaf(a[j + t], b[j + t], s[t]);
  }
  for (int t = 0; j + t < d; ++t) s[t] = fmaf(a[j + t], b[j + t], s[t]);
  return ReduceLanes(s);
}

LINR_HOST_DEVICE LINR_FORCE_INLINE float Exp(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return __builtin_expf(x);
#endif
}

// Exp as a functor: Mix's default exponential.
struct DefaultExp {
  LINR_HOST_DEVICE LINR_FORCE_INLINE float operator()(float x) const { return Exp(x); }
};

// The mixture of the PQ dot products x (see the header comment); NaN if any
// input is NaN (ranked as -inf by the selection). `exp` is the exponential of
// the softmax (the CPU scan passes its own, mol_cpu_scan.h ExpCpu).
#ifdef __CUDACC__
#pragma nv_exec_check_disable  // ExpFn may be host-only (instantiated on the host only)
#endif
template <typename ExpFn = DefaultExp>
LINR_HOST_DEVICE LINR_FORCE_INLINE float Mix(const float* x, int pq, const float* bias,
                                             const float* weight, bool softmax,
                                             ExpFn exp = ExpFn()) {
  float l[kMaxPairs];
  for (int j = 0; j < pq; ++j) l[j] = bias[j];
  for (int i = 0; i < pq; ++i) {
    const float xi = x[i];
    const float* w = weight + i * pq;
    for (int j = 0; j < pq; ++j) l[j] = fmaf(xi, w[j], l[j]);
  }
  if (!softmax) {
    float s = 0.f;
    for (int j = 0; j < pq; ++j) s = fmaf(l[j], x[j], s);
    return s;
  }
  float top = l[0];
  for (int j = 1; j < pq; ++j) top = l[j] > top ? l[j] : top;
  float z = 0.f, s = 0.f;
  for (int j = 0; j < pq; ++j) {
    const float e = exp(l[j] - top);
    z += e;
    s = fmaf(e, x[j], s);
  }
  return s / z;
}

}  // namespace mol
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_MOL_MOL_COMMON_H_
