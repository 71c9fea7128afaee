// CPU scan of LinrMoLTopK over a range of mask words (no TensorFlow
// dependency). Nothing of size [B, N] or [B, N, P*Q] is written: a score
// enters the query's running top-k (CandidateBuffer) only when it beats the
// k-th best so far.
//
// Two builds, chosen at run time ($LINR_CPU_ISA=portable forces the first):
//  * portable: item by item, query by query, mol_common.h's Dot and the
//    mixture below (MixCpu);
//  * AVX2 + FMA + F16C: blocks of 8 items that some query lets pass (gathered
//    from the mask word, so a filter skips whole items); each block's rows are
//    read (and widened from fp16 / bf16) once for all B queries. For one query
//    and one (p, q) pair, the 8 items' dot products run side by side, each
//    with its own 8-lane accumulator (lane t sums j = t, t + 8, ...), reduced
//    by one transpose-and-add in the canonical order; the gate logits, the
//    softmax and the mixture then run with one item per SIMD lane, in Mix's
//    order for every item.
// Both builds therefore compute every score with the same operations in the
// same order, the GPU's order (mol_common.h): bit-identical CPU results on
// either build. The one CPU-specific piece is ExpCpu, a Cephes-style expf
// (within 2 ulp of expf over the softmax's range, x <= 0), written once for
// scalars and once for vectors with identical operations: libm's expf costs
// more than the rest of the mixture, and the GPU's expf is not libm's either
// (CPU == GPU was never bitwise for the softmax gate; the tests compare
// within tolerance).
#ifndef LINR_CUSTOM_OPS_MOL_MOL_CPU_SCAN_H_
#define LINR_CUSTOM_OPS_MOL_MOL_CPU_SCAN_H_

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <vector>

#include "custom_ops/mol/mol_common.h"
#include "custom_ops/mol/mol_kernels.h"
#include "custom_ops/select/candidate_buffer.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LINR_MOL_X86 1
#else
#define LINR_MOL_X86 0
#endif

namespace linr {
namespace mol {

// Cephes expf constants (range reduction x = n ln2 + r, |r| <= ln2 / 2).
constexpr float kExpLo = -88.0f;   // exp(-88) ~ 6e-39: below it the result is 0
constexpr float kExpHi = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500e-4f, kExpP1 = 1.3981999507e-3f,
                kExpP2 = 8.3334519073e-3f, kExpP3 = 4.1665795894e-2f,
                kExpP4 = 1.6666665459e-1f, kExpP5 = 5.0000001201e-1f;

// exp(x) for float x; NaN stays NaN. Every step is one IEEE operation (fmaf
// explicit), as in ExpAvx2 lane by lane.
inline float ExpCpu(float x) {
  if (x != x) return x;
  x = kExpLo > x ? kExpLo : x;                 // max(lo, x): NaN passes
  x = kExpHi < x ? kExpHi : x;                 // min(hi, x): NaN passes
  const float n = __builtin_rintf(x * kLog2e);
  float r = fmaf(n, -kLn2Hi, x);
  r = fmaf(n, -kLn2Lo, r);
  const float r2 = r * r;
  float y = kExpP0;
  y = fmaf(y, r, kExpP1);
  y = fmaf(y, r, kExpP2);
  y = fmaf(y, r, kExpP3);
  y = fmaf(y, r, kExpP4);
  y = fmaf(y, r, kExpP5);
  y = fmaf(y, r2, r);
  y = y + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  return y * BitsToFloat(bits);
}

// Mix (mol_common.h) with ExpCpu as its exponential.
struct CpuExp {
  float operator()(float x) const { return ExpCpu(x); }
};
inline float MixCpu(const float* x, int pq, const float* bias, const float* weight,
                    bool softmax) {
  return mol::Mix(x, pq, bias, weight, softmax, CpuExp());
}

// ------------------------------------------------------------------ portable
// queries: [B, P, d] float32; words [w_begin, w_end) of the mask.
template <typename L>
void ScanWordsPortable(const MoLTopKArgs& a, int64_t w_begin, int64_t w_end,
                       CandidateBuffer<float>* buffers) {
  using S = typename L::Storage;
  const S* items = static_cast<const S*>(a.items);
  const int64_t P = a.p, Q = a.q, d = a.dim, pq = P * Q, row = Q * d;
  const uint32_t* mask = reinterpret_cast<const uint32_t*>(a.mask);
  std::vector<float> converted(static_cast<size_t>(row));
  float x[kMaxPairs];
  for (int64_t w = w_begin; w < w_end; ++w) {
    uint32_t any = 0;
    for (int64_t b = 0; b < a.batch; ++b) any |= mask[b * a.num_words + w];
    const int64_t tail = a.num_items - w * 32;
    if (tail < 32) any &= (tail <= 0) ? 0u : ((1u << tail) - 1u);
    while (any) {
      const int bit = __builtin_ctz(any);
      any &= any - 1;
      const int64_t i = w * 32 + bit;
      const float* e;
      if (sizeof(S) == sizeof(float)) {
        e = reinterpret_cast<const float*>(items + i * row);
      } else {
        const S* src = items + i * row;
        for (int64_t j = 0; j < row; ++j) converted[j] = L::Load(src, j);
        e = converted.data();
      }
      for (int64_t b = 0; b < a.batch; ++b) {
        if (!((mask[b * a.num_words + w] >> bit) & 1u)) continue;
        const float* qb = a.queries + b * P * d;
        for (int64_t p = 0; p < P; ++p) {
          for (int64_t q = 0; q < Q; ++q) x[p * Q + q] = Dot(qb + p * d, e + q * d, d);
        }
        const float s = MixCpu(x, static_cast<int>(pq), a.gate_bias + b * pq, a.gate_weight,
                               a.softmax);
        CandidateBuffer<float>& buf = buffers[b];
        if (!(s <= buf.Threshold())) buf.Push(s, static_cast<int32_t>(i));
      }
    }
  }
}

#if LINR_MOL_X86
#define LINR_MOL_AVX2 __attribute__((target("avx2,fma,f16c")))

constexpr int kBlock = 8;   // items per block = SIMD lanes

// exp of 8 floats: ExpCpu's operations lane by lane.
LINR_MOL_AVX2 inline __m256 ExpAvx2(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(kExpLo), x);   // lo > x ? lo : x
  x = _mm256_min_ps(_mm256_set1_ps(kExpHi), x);   // hi < x ? hi : x
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Hi), x);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Lo), r);
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 y = _mm256_set1_ps(kExpP0);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP1));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP2));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP3));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP4));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP5));
  y = _mm256_fmadd_ps(y, r2, r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

// Lane k of the result = the canonical reduction of acc[k]'s 8 lanes:
// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)).
LINR_MOL_AVX2 inline __m256 ReduceEightAvx2(const __m256* acc) {
  const __m256 t1 = _mm256_hadd_ps(acc[0], acc[1]);
  const __m256 t2 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 t3 = _mm256_hadd_ps(acc[4], acc[5]);
  const __m256 t4 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 u1 = _mm256_hadd_ps(t1, t2);
  const __m256 u2 = _mm256_hadd_ps(t3, t4);
  return _mm256_add_ps(_mm256_permute2f128_ps(u1, u2, 0x20),
                       _mm256_permute2f128_ps(u1, u2, 0x31));
}

// Widens `count` values of one item row to float32 (exact).
template <typename L>
struct WidenAvx2;
template <>
struct WidenAvx2<LoadF32> {
  LINR_MOL_AVX2 static void Run(const float* src, int64_t count, float* dst) {
    std::memcpy(dst, src, count * sizeof(float));
  }
};
template <>
struct WidenAvx2<LoadF16> {
  LINR_MOL_AVX2 static void Run(const uint16_t* src, int64_t count, float* dst) {
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) {
      _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j))));
    }
    for (; j < count; ++j) dst[j] = HalfToFloat(src[j]);
  }
};
template <>
struct WidenAvx2<LoadBF16> {
  LINR_MOL_AVX2 static void Run(const uint16_t* src, int64_t count, float* dst) {
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) {
      const __m256i wide =
          _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j)));
      _mm256_storeu_ps(dst + j, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
    for (; j < count; ++j) dst[j] = BitsToFloat(static_cast<uint32_t>(src[j]) << 16);
  }
};

// Per-shard scratch of the AVX2 scan.
struct Avx2Scratch {
  int64_t row_padded = 0, d_padded = 0;
  std::vector<float> rows;      // [kBlock, Q, d_padded] (zero-padded), when needed
  std::vector<float> queries;   // [B, P, d_padded] zero-padded
  alignas(32) float x[kMaxPairs][kBlock];
};

// Scores one block of `count` items (slots `index`, rows `e[k]`, each
// [Q, d_padded] float32) for every query b with a lane bit set in bits[b]
// (lane k = the block's k-th item passes query b's mask).
LINR_MOL_AVX2 inline void ScoreBlockAvx2(const MoLTopKArgs& a, const Avx2Scratch& s,
                                         const float* const* e, const int32_t* index, int count,
                                         const uint32_t* bits, CandidateBuffer<float>* buffers,
                                         float (*x)[kBlock]) {
  const int64_t P = a.p, Q = a.q, pq = P * Q, dp = s.d_padded;
  const float* w = a.gate_weight;
  for (int64_t b = 0; b < a.batch; ++b) {
    const uint32_t lanes = bits[b];
    if (lanes == 0) continue;
    const float* qb = s.queries.data() + b * P * dp;
    // The P*Q dot products, one item per lane of x[pair].
    for (int64_t p = 0; p < P; ++p) {
      const float* qp = qb + p * dp;
      for (int64_t q = 0; q < Q; ++q) {
        __m256 acc[kBlock];
        for (int k = 0; k < kBlock; ++k) acc[k] = _mm256_setzero_ps();
        const int64_t off = q * dp;
        for (int64_t j = 0; j < dp; j += 8) {
          const __m256 qv = _mm256_loadu_ps(qp + j);
          for (int k = 0; k < kBlock; ++k) {
            acc[k] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(e[k] + off + j), acc[k]);
          }
        }
        _mm256_store_ps(x[p * Q + q], ReduceEightAvx2(acc));
      }
    }
    // Gate logits l[j] = bias[j] + sum_i x[i] w[i, j] (i ascending), then
    // the softmax and the mixture: Mix's order, one item per lane.
    const float* bias = a.gate_bias + b * pq;
    __m256 l[kMaxPairs];
    for (int64_t j0 = 0; j0 < pq; j0 += 4) {
      const int64_t m = pq - j0 < 4 ? pq - j0 : 4;
      __m256 r0 = _mm256_set1_ps(bias[j0]);
      __m256 r1 = m > 1 ? _mm256_set1_ps(bias[j0 + 1]) : r0;
      __m256 r2 = m > 2 ? _mm256_set1_ps(bias[j0 + 2]) : r0;
      __m256 r3 = m > 3 ? _mm256_set1_ps(bias[j0 + 3]) : r0;
      if (m == 4) {
        for (int64_t i = 0; i < pq; ++i) {
          const __m256 xi = _mm256_load_ps(x[i]);
          const float* wi = w + i * pq + j0;
          r0 = _mm256_fmadd_ps(xi, _mm256_broadcast_ss(wi), r0);
          r1 = _mm256_fmadd_ps(xi, _mm256_broadcast_ss(wi + 1), r1);
          r2 = _mm256_fmadd_ps(xi, _mm256_broadcast_ss(wi + 2), r2);
          r3 = _mm256_fmadd_ps(xi, _mm256_broadcast_ss(wi + 3), r3);
        }
      } else {
        for (int64_t i = 0; i < pq; ++i) {
          const __m256 xi = _mm256_load_ps(x[i]);
          const float* wi = w + i * pq + j0;
          r0 = _mm256_fmadd_ps(xi, _mm256_broadcast_ss(wi), r0);
          if (m > 1) r1 = _mm256_fmadd_ps(xi, _mm256_broadcast_ss(wi + 1), r1);
          if (m > 2) r2 = _mm256_fmadd_ps(xi, _mm256_broadcast_ss(wi + 2), r2);
        }
      }
      l[j0] = r0;
      if (m > 1) l[j0 + 1] = r1;
      if (m > 2) l[j0 + 2] = r2;
      if (m > 3) l[j0 + 3] = r3;
    }
    __m256 score;
    if (!a.softmax) {
      score = _mm256_setzero_ps();
      for (int64_t j = 0; j < pq; ++j) score = _mm256_fmadd_ps(l[j], _mm256_load_ps(x[j]), score);
    } else {
      __m256 top = l[0];
      for (int64_t j = 1; j < pq; ++j) top = _mm256_max_ps(l[j], top);  // l > top ? l : top
      __m256 z = _mm256_setzero_ps(), num = _mm256_setzero_ps();
      for (int64_t j = 0; j < pq; ++j) {
        const __m256 ej = ExpAvx2(_mm256_sub_ps(l[j], top));
        z = _mm256_add_ps(z, ej);
        num = _mm256_fmadd_ps(ej, _mm256_load_ps(x[j]), num);
      }
      score = _mm256_div_ps(num, z);
    }
    // Lanes that pass and beat the k-th best so far (NaN threshold: empty
    // buffer admits all; NaN scores are admitted and ranked last).
    CandidateBuffer<float>& buf = buffers[b];
    uint32_t admit = lanes & static_cast<uint32_t>(_mm256_movemask_ps(
                                 _mm256_cmp_ps(score, _mm256_set1_ps(buf.Threshold()),
                                               _CMP_NLE_UQ)));
    if (admit == 0) continue;
    alignas(32) float sc[kBlock];
    _mm256_store_ps(sc, score);
    for (int k = 0; k < count; ++k) {
      if (!((admit >> k) & 1u)) continue;
      if (!(sc[k] <= buf.Threshold())) buf.Push(sc[k], index[k]);
    }
  }
}

template <typename L>
LINR_MOL_AVX2 void ScanWordsAvx2(const MoLTopKArgs& a, int64_t w_begin, int64_t w_end,
                                 CandidateBuffer<float>* buffers) {
  using S = typename L::Storage;
  const S* items = static_cast<const S*>(a.items);
  const int64_t P = a.p, Q = a.q, d = a.dim, row = Q * d;
  const uint32_t* mask = reinterpret_cast<const uint32_t*>(a.mask);
  Avx2Scratch s;
  s.d_padded = (d + 7) / 8 * 8;
  s.row_padded = Q * s.d_padded;
  // fp32 rows with d % 8 == 0 are read in place; the others are widened /
  // zero-padded into the block buffer.
  const bool in_place = sizeof(S) == sizeof(float) && s.d_padded == d;
  if (!in_place) s.rows.assign(static_cast<size_t>(kBlock * s.row_padded), 0.f);
  s.queries.assign(static_cast<size_t>(a.batch * P * s.d_padded), 0.f);
  for (int64_t bp = 0; bp < a.batch * P; ++bp) {
    std::memcpy(s.queries.data() + bp * s.d_padded, a.queries + bp * d, d * sizeof(float));
  }
  std::vector<uint32_t> bits(static_cast<size_t>(a.batch), 0u);   // per query: lane bits
  const float* e[kBlock];
  int32_t index[kBlock];
  int count = 0;
  auto flush = [&]() {
    if (count == 0) return;
    for (int k = count; k < kBlock; ++k) e[k] = e[0];     // padding lanes, ignored
    ScoreBlockAvx2(a, s, e, index, count, bits.data(), buffers, s.x);
    std::fill(bits.begin(), bits.end(), 0u);
    count = 0;
  };
  for (int64_t w = w_begin; w < w_end; ++w) {
    uint32_t any = 0;
    for (int64_t b = 0; b < a.batch; ++b) any |= mask[b * a.num_words + w];
    const int64_t tail = a.num_items - w * 32;
    if (tail < 32) any &= (tail <= 0) ? 0u : ((1u << tail) - 1u);
    while (any) {
      const int bit = __builtin_ctz(any);
      any &= any - 1;
      const int64_t i = w * 32 + bit;
      if (in_place) {
        e[count] = reinterpret_cast<const float*>(items + i * row);
      } else {
        float* dst = s.rows.data() + count * s.row_padded;
        for (int64_t q = 0; q < Q; ++q) {
          WidenAvx2<L>::Run(items + i * row + q * d, d, dst + q * s.d_padded);
        }
        e[count] = dst;
      }
      index[count] = static_cast<int32_t>(i);
      for (int64_t b = 0; b < a.batch; ++b) {
        bits[b] |= ((mask[b * a.num_words + w] >> bit) & 1u) << count;
      }
      if (++count == kBlock) flush();
    }
  }
  flush();
}
#endif  // LINR_MOL_X86

inline bool UseAvx2() {
  const char* env = std::getenv("LINR_CPU_ISA");
  if (env != nullptr && std::strcmp(env, "portable") == 0) return false;
#if LINR_MOL_X86
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
#else
  return false;
#endif
}

template <typename L>
void ScanWords(const MoLTopKArgs& a, int64_t w_begin, int64_t w_end,
               CandidateBuffer<float>* buffers) {
#if LINR_MOL_X86
  if (UseAvx2()) return ScanWordsAvx2<L>(a, w_begin, w_end, buffers);
#endif
  ScanWordsPortable<L>(a, w_begin, w_end, buffers);
}

}  // namespace mol
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_MOL_MOL_CPU_SCAN_H_
