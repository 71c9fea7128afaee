// AVX-512 tile kernels of the CPU top-k core (included by topk_cpu.h; no
// TensorFlow dependency). Same arithmetic as the AVX2 kernels, so the scores
// are bit-identical to them and to the portable path:
//   * several queries (ScoreGroupAvx512): one 16-lane register holds the 8
//     canonical partial sums of two queries side by side (lanes 0-7: query
//     2p, lanes 8-15: query 2p + 1) for one item; the item's 8 values are
//     broadcast to both halves (a plain broadcast load; half / bfloat16 are
//     converted exactly with vcvtph2ps / a 16-bit shift), the query pairs
//     come from a copy of the padded queries interleaved by
//     InterleaveQueryPairs. Each lane runs the canonical fma sequence.
//   * one query (ScoreGroupAvx512Single): two items side by side, the query
//     broadcast to both halves.
// The 256-bit halves are then reduced exactly as the AVX2 kernels do
// (ReduceEight / the same hadd tree). Not exercised on a CPU without
// AVX-512 F/BW/VL/DQ (Zen 3): tests/ops/cpu_isa_test.py compares it with the
// other paths where the CPU has it (Zen 4, Sapphire Rapids).
#ifndef LINR_CUSTOM_OPS_TOPK_TOPK_CPU_AVX512_H_
#define LINR_CUSTOM_OPS_TOPK_TOPK_CPU_AVX512_H_

#include <cstdint>
#include <cstring>
#include <vector>

namespace linr {
namespace cpu {

// Rewrites queries [4 * num_blocks, dim_padded] (zero-padded) in place into
// the pair layout of the AVX-512 kernels: block b keeps its 4 * dim_padded
// floats at the same offset; within it, pair p (queries 2p, 2p + 1) starts at
// p * 2 * dim_padded and chunk c (dims 8c .. 8c + 7) of the pair is the 16
// floats at 16 c: query 2p's 8 values, then query 2p + 1's.
inline void InterleaveQueryPairs(float* queries, int64_t num_blocks, int64_t dim_padded) {
  std::vector<float> block(kQueryBlock * dim_padded);
  for (int64_t b = 0; b < num_blocks; ++b) {
    float* base = queries + b * kQueryBlock * dim_padded;
    std::memcpy(block.data(), base, block.size() * sizeof(float));
    for (int p = 0; p < 2; ++p) {
      for (int64_t c = 0; c < dim_padded / kLanes; ++c) {
        float* out = base + p * 2 * dim_padded + c * 2 * kLanes;
        std::memcpy(out, block.data() + (2 * p) * dim_padded + c * kLanes, kLanes * sizeof(float));
        std::memcpy(out + kLanes, block.data() + (2 * p + 1) * dim_padded + c * kLanes,
                    kLanes * sizeof(float));
      }
    }
  }
}

#if LINR_X86_SIMD
#define LINR_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2,popcnt")))

template <typename S>
struct Avx512Load;

// Broadcast: the 8 values at p in both halves. Pair: a's 8 values in lanes
// 0-7, b's in lanes 8-15.
template <>
struct Avx512Load<float> {
  LINR_AVX512 static inline __m512 Broadcast(const float* p) {
    return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd(reinterpret_cast<const double*>(p))));
  }
  LINR_AVX512 static inline __m512 Pair(const float* a, const float* b) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(a)), _mm256_loadu_ps(b), 1);
  }
};

template <>
struct Avx512Load<HalfBits> {
  LINR_AVX512 static inline __m512 Broadcast(const HalfBits* p) {
    return _mm512_cvtph_ps(
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  LINR_AVX512 static inline __m512 Pair(const HalfBits* a, const HalfBits* b) {
    return _mm512_cvtph_ps(_mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1));
  }
};

template <>
struct Avx512Load<Bf16Bits> {
  LINR_AVX512 static inline __m512 Widen(__m256i bits16) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits16), 16));
  }
  LINR_AVX512 static inline __m512 Broadcast(const Bf16Bits* p) {
    return Widen(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  LINR_AVX512 static inline __m512 Pair(const Bf16Bits* a, const Bf16Bits* b) {
    return Widen(_mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1));
  }
};

LINR_AVX512 static inline __m256 LowHalf(__m512 v) { return _mm512_castps512_ps256(v); }
LINR_AVX512 static inline __m256 HighHalf(__m512 v) { return _mm512_extractf32x8_ps(v, 1); }

// Accumulates kItems items (xs[i], zero-padded tail copies tails[i]) against
// the two query pairs of block `qb` (pair layout): z[p][i].
template <typename S, int kItems>
LINR_AVX512 static inline void AccumulatePairs(const float* qb, int64_t full, int64_t dim_padded,
                                               bool has_tail, const S* const* xs,
                                               const S* const* tails, __m512 (*z)[kItems]) {
  for (int p = 0; p < 2; ++p) {
    for (int i = 0; i < kItems; ++i) z[p][i] = _mm512_setzero_ps();
  }
  const float* p0 = qb;
  const float* p1 = qb + 2 * dim_padded;
  for (int64_t j = 0; j < full; j += kLanes) {
    __m512 q0 = _mm512_loadu_ps(p0 + 2 * j);
    __m512 q1 = _mm512_loadu_ps(p1 + 2 * j);
    // One load per pair for all items (see the AVX2 kernel).
    __asm__("" : "+v"(q0));
    __asm__("" : "+v"(q1));
    for (int i = 0; i < kItems; ++i) {
      const __m512 x = Avx512Load<S>::Broadcast(xs[i] + j);
      z[0][i] = _mm512_fmadd_ps(q0, x, z[0][i]);
      z[1][i] = _mm512_fmadd_ps(q1, x, z[1][i]);
    }
  }
  if (has_tail) {
    const __m512 q0 = _mm512_loadu_ps(p0 + 2 * full);
    const __m512 q1 = _mm512_loadu_ps(p1 + 2 * full);
    for (int i = 0; i < kItems; ++i) {
      const __m512 x = Avx512Load<S>::Broadcast(tails[i]);
      z[0][i] = _mm512_fmadd_ps(q0, x, z[0][i]);
      z[1][i] = _mm512_fmadd_ps(q1, x, z[1][i]);
    }
  }
}

// The 8 scores (lane 2q + i) of items (2h, 2h + 1) of a tile from the pair
// accumulators z[p][first], z[p][first + 1], reduced as ReduceEight does.
template <int kItems>
LINR_AVX512 static inline __m256 ReduceHalf(__m512 (*z)[kItems], int first) {
  __m256 acc[8];
  for (int i = 0; i < 2; ++i) {
    acc[0 + i] = LowHalf(z[0][first + i]);   // query 0
    acc[2 + i] = HighHalf(z[0][first + i]);  // query 1
    acc[4 + i] = LowHalf(z[1][first + i]);   // query 2
    acc[6 + i] = HighHalf(z[1][first + i]);  // query 3
  }
  return ReduceEight(acc);
}

// As ScoreGroupAvx2, with `queries` in the pair layout (InterleaveQueryPairs).
template <typename S>
LINR_AVX512 void ScoreGroupAvx512(const float* queries, int64_t num_blocks, int64_t dim,
                                  int64_t dim_padded, const S* const* rows, const uint16_t* pass,
                                  const float* threshold, uint16_t* admit, float* scores) {
  const int64_t full = dim / kLanes * kLanes;
  const bool has_tail = full < dim;
  alignas(32) S tails[kItemGroup][kLanes];
  const S* tail_ptr[kItemGroup];
  for (int i = 0; i < kItemGroup; ++i) tail_ptr[i] = tails[i];
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
    const float* qb = queries + b * kQueryBlock * dim_padded;
    const __m256 thr = _mm256_permutevar8x32_ps(
        _mm256_castps128_ps256(_mm_loadu_ps(threshold + b * kQueryBlock)), spread);
    uint32_t admit_bits = 0;
    __m256 s[2];
    const bool lo = (pass_bits & 0xFFu) != 0, hi = (pass_bits >> 8) != 0;
    if (lo && hi) {
      __m512 z[2][4];
      AccumulatePairs<S, 4>(qb, full, dim_padded, has_tail, rows, tail_ptr, z);
      s[0] = ReduceHalf<4>(z, 0);
      s[1] = ReduceHalf<4>(z, 2);
    } else {
      const int h = hi ? 1 : 0;
      __m512 z[2][2];
      AccumulatePairs<S, 2>(qb, full, dim_padded, has_tail, rows + 2 * h, tail_ptr + 2 * h, z);
      s[h] = ReduceHalf<2>(z, 0);
      s[1 - h] = _mm256_setzero_ps();
    }
    for (int h = 0; h < 2; ++h) {
      if (((pass_bits >> (8 * h)) & 0xFFu) == 0) continue;
      _mm256_storeu_ps(scores + 16 * b + 8 * h, s[h]);
      const uint32_t ok =
          static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(s[h], thr, _CMP_NLE_UQ)));
      admit_bits |= ok << (8 * h);
    }
    admit[b] = static_cast<uint16_t>(admit_bits & pass_bits);
  }
}

// As ScoreGroupAvx2Single, with `query` = the query's block in the pair
// layout (the query is query 0 of the block): items (0, 1) and (2, 3) side by
// side, one pair after the other.
template <typename S>
LINR_AVX512 void ScoreGroupAvx512Single(const float* query, int64_t dim, const S* const* rows,
                                        uint32_t pass, float threshold, uint16_t* admit,
                                        float* scores) {
  const int64_t full = dim / kLanes * kLanes;
  __m512 acc[2];
  for (int p = 0; p < 2; ++p) {
    __m512 a = _mm512_setzero_ps();
    for (int64_t j = 0; j < full; j += kLanes) {
      const __m512 qv = Avx512Load<float>::Broadcast(query + 2 * j);
      a = _mm512_fmadd_ps(qv, Avx512Load<S>::Pair(rows[2 * p] + j, rows[2 * p + 1] + j), a);
    }
    if (full < dim) {
      alignas(32) S tail[2][kLanes];
      std::memset(tail, 0, sizeof(tail));
      std::memcpy(tail[0], rows[2 * p] + full, (dim - full) * sizeof(S));
      std::memcpy(tail[1], rows[2 * p + 1] + full, (dim - full) * sizeof(S));
      const __m512 qv = Avx512Load<float>::Broadcast(query + 2 * full);
      a = _mm512_fmadd_ps(qv, Avx512Load<S>::Pair(tail[0], tail[1]), a);
    }
    acc[p] = a;
  }
  const __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(LowHalf(acc[0]), HighHalf(acc[0])),
                                  _mm256_hadd_ps(LowHalf(acc[1]), HighHalf(acc[1])));
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
#endif  // LINR_X86_SIMD

}  // namespace cpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_TOPK_TOPK_CPU_AVX512_H_
