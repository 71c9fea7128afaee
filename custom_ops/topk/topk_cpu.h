// CPU scoring core of LinrMaskedTopK / LinrPrefilterTopK (no TensorFlow
// dependency).
//
// Scores are computed in tiles of 4 queries x 4 items. Every dot product uses
// one canonical float32 evaluation order, whatever the instruction set:
//   s[t] = fma(q[j], x[j], s[t]) for j = t, t + 8, t + 16, ... (ascending j,
//          dimension zero-padded to a multiple of 8, so padded lanes add
//          fma(0, 0, s) = s + 0)
//   score = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
// The portable path evaluates exactly this with std::fma, the AVX2 path with
// 8-lane FMA registers and a horizontal-add reduction that performs the same
// additions, the AVX-512 path (topk_cpu_avx512.h) with two such 8-lane
// groups side by side in one 16-lane register (two queries, or at B = 1 two
// items) and the same reduction, so all three give bit-identical scores. Item
// values are converted to float32 exactly (half and bfloat16 are subsets of
// float32); no dot-product instruction that rounds differently is used
// (VDPBF16PS adds pairs of products before rounding, AVX512-FP16 multiplies
// in half precision: neither reproduces the canonical order).
//
// Tile bit layout (16 bits / 16 scores per block of 4 queries): pair
// (query q, item i) of the block is bit (i / 2) * 8 + q * 2 + (i % 2).
#ifndef LINR_CUSTOM_OPS_TOPK_TOPK_CPU_H_
#define LINR_CUSTOM_OPS_TOPK_TOPK_CPU_H_

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "custom_ops/common/cpu_isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LINR_X86_SIMD 1
#else
#define LINR_X86_SIMD 0
#endif

namespace linr {
namespace cpu {

constexpr int kLanes = 8;       // canonical partial sums per dot product
constexpr int kQueryBlock = 4;  // queries per tile
constexpr int kItemGroup = 4;   // items per tile

inline int64_t PaddedDim(int64_t d) { return (d + kLanes - 1) / kLanes * kLanes; }

// Bit of pair (q, i) in a tile mask (see header comment).
constexpr int TileBit(int q, int i) { return (i >> 1) * 8 + q * 2 + (i & 1); }

// Spreads the 4 item bits `nibble` (bit i = item i) of query q into tile bits.
inline uint32_t SpreadNibble(uint32_t nibble, int q) {
  return ((nibble & 3u) << (2 * q)) | (((nibble >> 2) & 3u) << (8 + 2 * q));
}

// Instruction sets with a dedicated path.
enum class Isa { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

// The path to use (common/cpu_isa.h): $LINR_CPU_ISA = "portable" (or
// "popcnt") forces the portable code, "avx2" caps at AVX2; else the best one
// the CPU supports (AVX-512 F/BW/VL/DQ, AVX2 + FMA + F16C + BMI2, portable).
inline Isa SelectIsa() {
#if LINR_X86_SIMD
  const int level = cpu_isa::Select(/*avx512_ok=*/true);
  if (level >= cpu_isa::kAvx512) return Isa::kAvx512;
  if (level >= cpu_isa::kAvx2) return Isa::kAvx2;
#endif
  return Isa::kPortable;
}

inline const char* IsaName(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : isa == Isa::kAvx2 ? "avx2" : "portable";
}

// Canonical reduction of the 8 partial sums.
inline float ReduceLanes(const float* s) {
  const float a0 = s[0] + s[1], a1 = s[2] + s[3], a2 = s[4] + s[5], a3 = s[6] + s[7];
  return (a0 + a1) + (a2 + a3);
}

// Canonical dot product (portable reference of the tile kernels).
template <typename T>
inline float CanonicalDot(const float* query_padded, const T* item, int64_t dim,
                          int64_t dim_padded) {
  float s[kLanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int64_t j = 0; j < dim_padded; j += kLanes) {
    for (int t = 0; t < kLanes; ++t) {
      const float x = j + t < dim ? static_cast<float>(item[j + t]) : 0.f;
      s[t] = std::fma(query_padded[j + t], x, s[t]);
    }
  }
  return ReduceLanes(s);
}

// Arguments of a group kernel: score 4 item rows against `num_blocks` blocks
// of 4 queries. For block b, only tiles with pass[b] != 0 are computed; the
// kernel writes the 16 scores to scores[16 * b + bit] and sets admit[b] to the
// pass bits whose score s satisfies !(s <= threshold[q]) (a NaN threshold
// admits everything; NaN scores are admitted and ranked as -inf later).
template <typename T>
struct GroupArgs {
  const float* queries;  // [4 * num_blocks, dim_padded], zero-padded
  int64_t num_blocks;
  int64_t dim;
  int64_t dim_padded;
  const T* rows[kItemGroup];  // valid pointers (repeat a row for missing items)
  const uint16_t* pass;       // [num_blocks]
  const float* threshold;     // [4 * num_blocks]
  uint16_t* admit;            // [num_blocks]
  float* scores;              // [16 * num_blocks]
};

template <typename T>
void ScoreGroupPortable(const GroupArgs<T>& a) {
  for (int64_t b = 0; b < a.num_blocks; ++b) {
    uint32_t admit = 0;
    const uint32_t pass = a.pass[b];
    if (pass != 0) {
      for (int q = 0; q < kQueryBlock; ++q) {
        const float* query = a.queries + (b * kQueryBlock + q) * a.dim_padded;
        const float thr = a.threshold[b * kQueryBlock + q];
        for (int i = 0; i < kItemGroup; ++i) {
          const int bit = TileBit(q, i);
          if (!((pass >> bit) & 1u)) continue;
          const float s = CanonicalDot<T>(query, a.rows[i], a.dim, a.dim_padded);
          a.scores[16 * b + bit] = s;
          if (!(s <= thr)) admit |= 1u << bit;
        }
      }
    }
    a.admit[b] = static_cast<uint16_t>(admit);
  }
}

#if LINR_X86_SIMD
#define LINR_AVX2 __attribute__((target("avx2,fma,f16c,bmi2")))

template <typename T>
struct Avx2Load;

template <>
struct Avx2Load<float> {
  LINR_AVX2 static inline __m256 Load(const float* p) { return _mm256_loadu_ps(p); }
};

// Raw 16-bit storage types are passed as uint16_t-compatible pointers.
struct HalfBits {
  uint16_t v;
};
struct Bf16Bits {
  uint16_t v;
};

template <>
struct Avx2Load<HalfBits> {
  LINR_AVX2 static inline __m256 Load(const HalfBits* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

template <>
struct Avx2Load<Bf16Bits> {
  LINR_AVX2 static inline __m256 Load(const Bf16Bits* p) {
    const __m256i wide =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
};

// Sums each of 8 accumulators (canonical order) into one lane each.
LINR_AVX2 static inline __m256 ReduceEight(const __m256* acc) {
  const __m256 t1 = _mm256_hadd_ps(acc[0], acc[1]);
  const __m256 t2 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 t3 = _mm256_hadd_ps(acc[4], acc[5]);
  const __m256 t4 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 u1 = _mm256_hadd_ps(t1, t2);
  const __m256 u2 = _mm256_hadd_ps(t3, t4);
  return _mm256_add_ps(_mm256_permute2f128_ps(u1, u2, 0x20),
                       _mm256_permute2f128_ps(u1, u2, 0x31));
}

// S: storage type with an Avx2Load (float, HalfBits, Bf16Bits).
template <typename S>
LINR_AVX2 void ScoreGroupAvx2(const float* queries, int64_t num_blocks, int64_t dim,
                              int64_t dim_padded, const S* const* rows, const uint16_t* pass,
                              const float* threshold, uint16_t* admit, float* scores) {
  const int64_t full = dim / kLanes * kLanes;
  const bool has_tail = full < dim;
  // Zero-padded copies of the partial last block of each row.
  alignas(32) S tails[kItemGroup][kLanes];
  if (has_tail) {
    std::memset(tails, 0, sizeof(tails));
    for (int i = 0; i < kItemGroup; ++i) {
      std::memcpy(tails[i], rows[i] + full, (dim - full) * sizeof(S));
    }
  }
  const __m256i spread = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  for (int64_t b = 0; b < num_blocks; ++b) {
    const uint32_t pass_bits = pass[b];
    if (pass_bits == 0) {
      admit[b] = 0;
      continue;
    }
    const float* q0 = queries + b * kQueryBlock * dim_padded;
    const __m256 thr = _mm256_permutevar8x32_ps(
        _mm256_castps128_ps256(_mm_loadu_ps(threshold + b * kQueryBlock)), spread);
    uint32_t admit_bits = 0;
    for (int h = 0; h < 2; ++h) {
      if (((pass_bits >> (8 * h)) & 0xFFu) == 0) continue;
      const S* xa = rows[2 * h];
      const S* xb = rows[2 * h + 1];
      __m256 acc[8];
      for (int t = 0; t < 8; ++t) acc[t] = _mm256_setzero_ps();
      for (int64_t j = 0; j < full; j += kLanes) {
        const __m256 x0 = Avx2Load<S>::Load(xa + j);
        const __m256 x1 = Avx2Load<S>::Load(xb + j);
        for (int q = 0; q < kQueryBlock; ++q) {
          __m256 qv = _mm256_loadu_ps(q0 + q * dim_padded + j);
          // Keep qv in a register: one load for two FMAs (GCC would otherwise
          // fold the load into both FMAs and become load-bound).
          __asm__("" : "+x"(qv));
          acc[2 * q] = _mm256_fmadd_ps(qv, x0, acc[2 * q]);
          acc[2 * q + 1] = _mm256_fmadd_ps(qv, x1, acc[2 * q + 1]);
        }
      }
      if (has_tail) {
        const __m256 x0 = Avx2Load<S>::Load(tails[2 * h]);
        const __m256 x1 = Avx2Load<S>::Load(tails[2 * h + 1]);
        for (int q = 0; q < kQueryBlock; ++q) {
          const __m256 qv = _mm256_loadu_ps(q0 + q * dim_padded + full);
          acc[2 * q] = _mm256_fmadd_ps(qv, x0, acc[2 * q]);
          acc[2 * q + 1] = _mm256_fmadd_ps(qv, x1, acc[2 * q + 1]);
        }
      }
      const __m256 s = ReduceEight(acc);
      _mm256_storeu_ps(scores + 16 * b + 8 * h, s);
      const uint32_t ok =
          static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(s, thr, _CMP_NLE_UQ)));
      admit_bits |= ok << (8 * h);
    }
    admit[b] = static_cast<uint16_t>(admit_bits & pass_bits);
  }
}

// Single-query variant: 4 items against query row `query` (block of one real
// query; bits of query 0 only). Same arithmetic as ScoreGroupAvx2.
template <typename S>
LINR_AVX2 void ScoreGroupAvx2Single(const float* query, int64_t dim, const S* const* rows,
                                    uint32_t pass, float threshold, uint16_t* admit,
                                    float* scores) {
  const int64_t full = dim / kLanes * kLanes;
  __m256 acc[4];
  for (int t = 0; t < 4; ++t) acc[t] = _mm256_setzero_ps();
  // Row after row (each row's chain is independent, so the order of rows
  // changes no bit): one sequential stream, which the hardware prefetcher
  // follows; four rows interleaved ran at half the read bandwidth on Zen 3.
  for (int i = 0; i < 4; ++i) {
    const S* row = rows[i];
    __m256 a = acc[i];
    for (int64_t j = 0; j < full; j += kLanes) {
      a = _mm256_fmadd_ps(_mm256_loadu_ps(query + j), Avx2Load<S>::Load(row + j), a);
    }
    acc[i] = a;
  }
  if (full < dim) {
    alignas(32) S tail[kLanes];
    const __m256 qv = _mm256_loadu_ps(query + full);
    for (int i = 0; i < 4; ++i) {
      std::memset(tail, 0, sizeof(tail));
      std::memcpy(tail, rows[i] + full, (dim - full) * sizeof(S));
      acc[i] = _mm256_fmadd_ps(qv, Avx2Load<S>::Load(tail), acc[i]);
    }
  }
  const __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
  alignas(16) float out[4];
  _mm_store_ps(out, s);
  const uint32_t ok = static_cast<uint32_t>(
      _mm_movemask_ps(_mm_cmp_ps(s, _mm_set1_ps(threshold), _CMP_NLE_UQ)));
  uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) {
    scores[TileBit(0, i)] = out[i];
    bits |= ((ok >> i) & 1u) << TileBit(0, i);
  }
  *admit = static_cast<uint16_t>(bits & pass);
}

// Parallel bit extract (BMI2).
LINR_AVX2 inline uint32_t PextAvx2(uint32_t value, uint32_t mask) { return _pext_u32(value, mask); }
#endif  // LINR_X86_SIMD

// Portable parallel bit extract: the bits of `value` at the set positions of
// `mask`, packed to the low end.
inline uint32_t PextPortable(uint32_t value, uint32_t mask) {
  uint32_t out = 0;
  int pos = 0;
  while (mask != 0) {
    const int bit = __builtin_ctz(mask);
    out |= ((value >> bit) & 1u) << pos++;
    mask &= mask - 1;
  }
  return out;
}

}  // namespace cpu
}  // namespace linr

#include "custom_ops/topk/topk_cpu_avx512.h"

#endif  // LINR_CUSTOM_OPS_TOPK_TOPK_CPU_H_
