// CPU building blocks of LinrHammingTopK (host only, no TensorFlow
// dependency): Hamming distances of one query against a run of item codes,
// and the threshold test that turns distances into admission bits.
//
// Three instruction-set paths compute exactly the same integers:
//   portable  plain C++ (__builtin_popcount without -mpopcnt): the reference;
//   popcnt    the same loops compiled with the POPCNT instruction;
//   avx2      POPCNT for the distances (4 POPCNT/cycle on Zen 3 beats the
//             vpshufb nibble-LUT method at these code widths; see below) and
//             AVX2 for the threshold test, plus a vpshufb nibble-LUT
//             (Mula) popcount for codes that are a multiple of 256 bits;
//   avx512    AVX-512 VPOPCNTDQ for the distances of codes of 64 to 1024 bits
//             (2 to 32 words): 8 codes' 64-bit lanes counted per instruction
//             and summed per code by a vpermt2q tree, gathered codes copied
//             to a block of 8 first; an AVX-512BW threshold test; the
//             8-queries-per-item pass of the AVX2 path (not exercised on a
//             CPU without AVX-512: tests/ops/cpu_isa_test.py runs it where
//             the CPU has it).
// $LINR_CPU_ISA (common/cpu_isa.h) caps the path: portable, popcnt, avx2,
// avx512; otherwise the best path the CPU supports is chosen at run time.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_CPU_SIMD_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_CPU_SIMD_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "custom_ops/common/cpu_isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LINR_HAMMING_X86 1
#else
#define LINR_HAMMING_X86 0
#endif

namespace linr {
namespace hamming_cpu {

enum class Isa { kPortable = 0, kPopcnt = 1, kAvx2 = 2, kAvx512 = 3 };

inline const char* IsaName(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512"
         : isa == Isa::kAvx2 ? "avx2"
         : isa == Isa::kPopcnt ? "popcnt" : "portable";
}

// $LINR_CPU_ISA caps the path ("portable", "popcnt", "avx2", "avx512");
// else the best path the CPU supports (AVX-512 needs VPOPCNTDQ).
inline Isa SelectIsa() {
  switch (cpu_isa::Select(/*avx512_ok=*/cpu_isa::HasAvx512Vpopcntdq())) {
    case cpu_isa::kAvx512: return Isa::kAvx512;
    case cpu_isa::kAvx2: return Isa::kAvx2;
    case cpu_isa::kPopcnt: return Isa::kPopcnt;
    default: return Isa::kPortable;
  }
}

// Distances are uint16 (m <= 1024 < 2^15); slots past the end of a run are
// padded with kPadDistance, which no limit admits.
constexpr uint16_t kPadDistance = 0x7FFF;

// ---------------------------------------------------------------- portable
// Hamming distance of two codes of kWords (> 0) or `words` (kWords == 0)
// 32-bit words, by 64-bit words where the width allows.
template <int kWords>
inline __attribute__((always_inline)) int CodeDistance(const uint32_t* q, const uint32_t* c,
                                                       int64_t words) {
  if (kWords > 0 && kWords % 2 == 0) {
    int dist = 0;
    for (int j = 0; j < kWords / 2; ++j) {
      uint64_t a, b;
      std::memcpy(&a, q + 2 * j, 8);
      std::memcpy(&b, c + 2 * j, 8);
      dist += __builtin_popcountll(a ^ b);
    }
    return dist;
  }
  const int64_t nw = kWords > 0 ? kWords : words;
  int dist = 0;
  for (int64_t j = 0; j < nw; ++j) dist += __builtin_popcount(q[j] ^ c[j]);
  return dist;
}

// out[i] = distance(query, codes[i]) for i < n (codes: n rows of `words`).
template <int kWords>
inline __attribute__((always_inline)) void DistancesBody(const uint32_t* query,
                                                         const uint32_t* codes, int64_t words,
                                                         int64_t n, uint16_t* out) {
  const int64_t nw = kWords > 0 ? kWords : words;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint16_t>(CodeDistance<kWords>(query, codes + i * nw, nw));
  }
}

// out[j] = distance(query, codes[index[j]]) for j < n.
template <int kWords>
inline __attribute__((always_inline)) void DistancesAtBody(const uint32_t* query,
                                                           const uint32_t* codes, int64_t words,
                                                           const int32_t* index, int64_t n,
                                                           uint16_t* out) {
  const int64_t nw = kWords > 0 ? kWords : words;
  for (int64_t j = 0; j < n; ++j) {
    out[j] = static_cast<uint16_t>(CodeDistance<kWords>(query, codes + index[j] * nw, nw));
  }
}

// admit[w] bit b = dist[32 w + b] < limit, for 32 * num_words distances.
inline __attribute__((always_inline)) void AdmitBody(const uint16_t* dist, int64_t num_words,
                                                     int limit, uint32_t* admit) {
  for (int64_t w = 0; w < num_words; ++w) {
    uint32_t bits = 0;
    for (int b = 0; b < 32; ++b) bits |= static_cast<uint32_t>(dist[32 * w + b] < limit) << b;
    admit[w] = bits;
  }
}

template <int kWords>
void DistancesPortable(const uint32_t* query, const uint32_t* codes, int64_t words, int64_t n,
                       uint16_t* out) {
  DistancesBody<kWords>(query, codes, words, n, out);
}
template <int kWords>
void DistancesAtPortable(const uint32_t* query, const uint32_t* codes, int64_t words,
                         const int32_t* index, int64_t n, uint16_t* out) {
  DistancesAtBody<kWords>(query, codes, words, index, n, out);
}
inline void AdmitPortable(const uint16_t* dist, int64_t num_words, int limit, uint32_t* admit) {
  AdmitBody(dist, num_words, limit, admit);
}

#if LINR_HAMMING_X86
// ------------------------------------------------------------------ POPCNT
#define LINR_HAMMING_POPCNT __attribute__((target("popcnt")))
template <int kWords>
LINR_HAMMING_POPCNT void DistancesPopcnt(const uint32_t* query, const uint32_t* codes,
                                         int64_t words, int64_t n, uint16_t* out) {
  DistancesBody<kWords>(query, codes, words, n, out);
}
template <int kWords>
LINR_HAMMING_POPCNT void DistancesAtPopcnt(const uint32_t* query, const uint32_t* codes,
                                           int64_t words, const int32_t* index, int64_t n,
                                           uint16_t* out) {
  DistancesAtBody<kWords>(query, codes, words, index, n, out);
}

// -------------------------------------------------------------------- AVX2
#define LINR_HAMMING_AVX2 __attribute__((target("avx2,popcnt")))

// Threshold test, 32 distances per step: two signed 16-bit compares (values
// <= 0x7FFF), packed to bytes, one movemask.
LINR_HAMMING_AVX2 inline void AdmitAvx2(const uint16_t* dist, int64_t num_words, int limit,
                                        uint32_t* admit) {
  const __m256i lim = _mm256_set1_epi16(static_cast<int16_t>(limit));
  for (int64_t w = 0; w < num_words; ++w) {
    const __m256i d0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dist + 32 * w));
    const __m256i d1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dist + 32 * w + 16));
    const __m256i c0 = _mm256_cmpgt_epi16(lim, d0);
    const __m256i c1 = _mm256_cmpgt_epi16(lim, d1);
    // packs interleaves 128-bit lanes: [c0.lo c1.lo c0.hi c1.hi]; fix order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi16(c0, c1), 0xD8);
    admit[w] = static_cast<uint32_t>(_mm256_movemask_epi8(packed));
  }
}

// Byte-wise popcount of v (Mula: two 16-entry nibble lookups with vpshufb).
LINR_HAMMING_AVX2 inline __m256i PopcountBytesAvx2(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(v, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

// Codes of kWords = 8 * kChunks words (256-bit multiples): byte counts of the
// chunks are added (<= 8 * kChunks <= 255 per byte for kChunks <= 31), then
// summed per item with vpsadbw; four items' four 64-bit partial sums are
// combined with unpack/add so one store writes... (kept scalar: 4 extracts).
template <int kChunks>
LINR_HAMMING_AVX2 void DistancesMulaAvx2(const uint32_t* query, const uint32_t* codes,
                                         int64_t words, int64_t n, uint16_t* out) {
  __m256i q[kChunks];
  for (int c = 0; c < kChunks; ++c) {
    q[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + 8 * c));
  }
  const __m256i zero = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256i sums[4];
    for (int t = 0; t < 4; ++t) {
      const uint32_t* code = codes + (i + t) * 8 * kChunks;
      __m256i acc = zero;
      for (int c = 0; c < kChunks; ++c) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + 8 * c));
        acc = _mm256_add_epi8(acc, PopcountBytesAvx2(_mm256_xor_si256(x, q[c])));
      }
      sums[t] = _mm256_sad_epu8(acc, zero);  // 4 x 64-bit partial sums
    }
    // [a0 a1 | a2 a3] + [b0 b1 | b2 b3] -> [a0+a1, b0+b1 | a2+a3, b2+b3]
    const __m256i ab = _mm256_add_epi64(_mm256_unpacklo_epi64(sums[0], sums[1]),
                                         _mm256_unpackhi_epi64(sums[0], sums[1]));
    const __m256i cd = _mm256_add_epi64(_mm256_unpacklo_epi64(sums[2], sums[3]),
                                         _mm256_unpackhi_epi64(sums[2], sums[3]));
    // Lane halves: [ab.lo cd.lo] + [ab.hi cd.hi] -> [a, b, c, d] as 64-bit.
    const __m256i total = _mm256_add_epi64(_mm256_permute2x128_si256(ab, cd, 0x20),
                                           _mm256_permute2x128_si256(ab, cd, 0x31));
    // 64-bit lanes [a b c d] -> 16-bit a b c d in the low 64 bits.
    const __m256i shuf = _mm256_shuffle_epi8(
        total, _mm256_setr_epi8(0, 1, 8, 9, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                0, 1, 8, 9, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
    const uint32_t lo = static_cast<uint32_t>(_mm256_cvtsi256_si32(shuf));
    const uint32_t hi = static_cast<uint32_t>(_mm256_extract_epi32(shuf, 4));
    std::memcpy(out + i, &lo, 4);
    std::memcpy(out + i + 2, &hi, 4);
  }
  for (; i < n; ++i) {
    out[i] = static_cast<uint16_t>(CodeDistance<8 * kChunks>(query, codes + i * 8 * kChunks, 0));
  }
}

// ------------------------------------------------------- AVX-512 VPOPCNTDQ
#define LINR_HAMMING_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx2,popcnt")))

// Lane sums of adjacent 64-bit lanes of the 16 lanes (a, b):
// out[m] = cat(a, b)[2m] + cat(a, b)[2m + 1].
LINR_HAMMING_AVX512 inline __m512i PairSum64(__m512i a, __m512i b) {
  const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
  return _mm512_add_epi64(_mm512_permutex2var_epi64(a, even, b),
                          _mm512_permutex2var_epi64(a, odd, b));
}

// Distances of the 8 contiguous codes at `codes` (kWords in {2, 4, 8, 16,
// 32}) against the query replicated in qv (kQRegs registers): the codes'
// kWords / 2 lanes each lie in kWords / 2 registers, counted, then summed
// per code by log2(kWords / 2) levels of PairSum64 (lane order = code order).
template <int kWords>
LINR_HAMMING_AVX512 inline void Distances8Avx512(const __m512i* qv, const uint32_t* codes,
                                                 uint16_t* out) {
  constexpr int kRegs = kWords / 2;  // registers per 8 codes
  constexpr int kQRegs = kWords > 16 ? kWords / 16 : 1;
  __m512i v[kRegs];
  for (int r = 0; r < kRegs; ++r) {
    v[r] = _mm512_popcnt_epi64(
        _mm512_xor_si512(_mm512_loadu_si512(codes + 16 * r), qv[r % kQRegs]));
  }
  for (int width = kRegs; width > 1; width /= 2) {
    for (int r = 0; r < width / 2; ++r) v[r] = PairSum64(v[2 * r], v[2 * r + 1]);
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi64_epi16(v[0]));
}

// The query repeated to fill kQRegs 512-bit registers.
template <int kWords>
LINR_HAMMING_AVX512 inline void ReplicateQuery(const uint32_t* query, __m512i* qv) {
  alignas(64) uint32_t rep[kWords > 16 ? kWords : 16];
  const int total = kWords > 16 ? kWords : 16;
  for (int i = 0; i < total; ++i) rep[i] = query[i % kWords];
  for (int r = 0; r < total / 16; ++r) qv[r] = _mm512_load_si512(rep + 16 * r);
}

template <int kWords>
LINR_HAMMING_AVX512 void DistancesAvx512(const uint32_t* query, const uint32_t* codes,
                                         int64_t words, int64_t n, uint16_t* out) {
  __m512i qv[kWords > 16 ? kWords / 16 : 1];
  ReplicateQuery<kWords>(query, qv);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) Distances8Avx512<kWords>(qv, codes + i * kWords, out + i);
  for (; i < n; ++i) {
    out[i] = static_cast<uint16_t>(CodeDistance<kWords>(query, codes + i * kWords, kWords));
  }
}

template <int kWords>
LINR_HAMMING_AVX512 void DistancesAtAvx512(const uint32_t* query, const uint32_t* codes,
                                           int64_t words, const int32_t* index, int64_t n,
                                           uint16_t* out) {
  __m512i qv[kWords > 16 ? kWords / 16 : 1];
  ReplicateQuery<kWords>(query, qv);
  alignas(64) uint32_t buf[8 * kWords];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int r = 0; r < 8; ++r) {
      std::memcpy(buf + r * kWords, codes + static_cast<int64_t>(index[j + r]) * kWords,
                  4 * kWords);
    }
    Distances8Avx512<kWords>(qv, buf, out + j);
  }
  for (; j < n; ++j) {
    out[j] = static_cast<uint16_t>(
        CodeDistance<kWords>(query, codes + static_cast<int64_t>(index[j]) * kWords, kWords));
  }
}

// Threshold test, 32 distances per compare (AVX-512BW).
LINR_HAMMING_AVX512 inline void AdmitAvx512(const uint16_t* dist, int64_t num_words, int limit,
                                            uint32_t* admit) {
  const __m512i lim = _mm512_set1_epi16(static_cast<int16_t>(limit));
  for (int64_t w = 0; w < num_words; ++w) {
    const __m512i d = _mm512_loadu_si512(dist + 32 * w);
    admit[w] = static_cast<uint32_t>(_mm512_cmplt_epi16_mask(d, lim));
  }
}
#endif  // LINR_HAMMING_X86

// ------------------------------------------------- AVX2, 8 queries per item
// Query-blocked scoring: one 256-bit register holds word w of 8 queries (one
// per 32-bit lane), so one broadcast of an item's word w is compared with 8
// queries at once. The nibble split commutes with XOR,
//   (x ^ q) & 0x0F = (x & 0x0F) ^ (q & 0x0F),  ((x ^ q) >> 4) & 0x0F likewise,
// so items are split once per tile (SplitNibbles, shared by every query
// block) and queries once per call (SplitQueryBlock); per (item word, 8
// queries) that leaves 2 XOR + 2 vpshufb lookups + 2 byte adds. Byte counts
// are summed per lane with vpmaddubsw / vpmaddwd and compared with the 8
// queries' limits; the loop only leaves on an item some query admits.

// split[2 j] = codes[j] & 0x0F0F0F0F, split[2 j + 1] = (codes[j] >> 4) & 0x0F0F0F0F.
inline void SplitNibbles(const uint32_t* codes, int64_t count, uint32_t* split) {
  for (int64_t j = 0; j < count; ++j) {
    split[2 * j] = codes[j] & 0x0F0F0F0Fu;
    split[2 * j + 1] = (codes[j] >> 4) & 0x0F0F0F0Fu;
  }
}

// out[(w * 2 + h) * 8 + lane]: nibble half h of word w of query `lane` of the
// block (queries[lane], lanes >= nq zero).
inline void SplitQueryBlock(const uint32_t* queries, int64_t nq, int64_t words, uint32_t* out) {
  for (int64_t w = 0; w < words; ++w) {
    for (int64_t lane = 0; lane < 8; ++lane) {
      const uint32_t q = lane < nq ? queries[lane * words + w] : 0u;
      out[(w * 2) * 8 + lane] = q & 0x0F0F0F0Fu;
      out[(w * 2 + 1) * 8 + lane] = (q >> 4) & 0x0F0F0F0Fu;
    }
  }
}

// Scans items [begin, end) of a tile (nibble-split codes `xsplit`, 2 * words
// per item) against a split query block; returns the first item where some
// lane has distance < limits[lane], with *hits = those lanes and dist[0..7]
// the 8 distances; returns `end` if none.
using Block8Fn = int64_t (*)(const uint32_t* qsplit, const uint32_t* xsplit, int64_t words,
                             int64_t begin, int64_t end, const int32_t* limits, uint32_t* hits,
                             int32_t* dist);

#if LINR_HAMMING_X86
template <int kWords>
LINR_HAMMING_AVX2 int64_t Block8Avx2(const uint32_t* qsplit, const uint32_t* xsplit,
                                     int64_t words, int64_t begin, int64_t end,
                                     const int32_t* limits, uint32_t* hits, int32_t* dist) {
  const int64_t nw = kWords > 0 ? kWords : words;
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i lim = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(limits));
  const __m256i* q = reinterpret_cast<const __m256i*>(qsplit);
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t* x = xsplit + i * 2 * nw;
    __m256i acc16 = _mm256_setzero_si256();
    for (int64_t w0 = 0; w0 < nw; w0 += 16) {  // bytes hold <= 16 * 8 = 128
      const int64_t w1 = w0 + 16 < nw ? w0 + 16 : nw;
      __m256i acc8 = _mm256_setzero_si256();
      for (int64_t w = w0; w < w1; ++w) {
        const __m256i lo = _mm256_xor_si256(_mm256_set1_epi32(static_cast<int>(x[2 * w])),
                                            _mm256_loadu_si256(q + 2 * w));
        const __m256i hi = _mm256_xor_si256(_mm256_set1_epi32(static_cast<int>(x[2 * w + 1])),
                                            _mm256_loadu_si256(q + 2 * w + 1));
        acc8 = _mm256_add_epi8(acc8, _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                                                     _mm256_shuffle_epi8(lut, hi)));
      }
      acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(acc8, ones8));
    }
    const __m256i d = _mm256_madd_epi16(acc16, ones16);
    const int m = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(lim, d)));
    if (m != 0) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dist), d);
      *hits = static_cast<uint32_t>(m);
      return i;
    }
  }
  return end;
}
#endif  // LINR_HAMMING_X86

// --------------------------------------------------------------- dispatch
using DistancesFn = void (*)(const uint32_t*, const uint32_t*, int64_t, int64_t, uint16_t*);
using DistancesAtFn = void (*)(const uint32_t*, const uint32_t*, int64_t, const int32_t*, int64_t,
                               uint16_t*);
using AdmitFn = void (*)(const uint16_t*, int64_t, int, uint32_t*);

struct Kernels {
  Isa isa;
  DistancesFn distances;      // dense: every item of a run
  DistancesAtFn distances_at;  // sparse: listed items
  AdmitFn admit;
  Block8Fn block8;             // 8 queries per item pass (nullptr: none)
};

// Widths with an AVX-512 distance loop.
constexpr bool HasAvx512Width(int words) {
  return words == 2 || words == 4 || words == 8 || words == 16 || words == 32;
}

template <int kWords>
Kernels KernelsFor(Isa isa) {
#if LINR_HAMMING_X86
  if (isa == Isa::kAvx512) {
    Block8Fn block8 = &Block8Avx2<kWords>;
    if (std::getenv("LINR_HAMMING_NO_BLOCK8") != nullptr) block8 = nullptr;
    if (HasAvx512Width(kWords)) {
      return Kernels{isa, &DistancesAvx512<HasAvx512Width(kWords) ? kWords : 2>,
                     &DistancesAtAvx512<HasAvx512Width(kWords) ? kWords : 2>, &AdmitAvx512,
                     block8};
    }
    return Kernels{isa, &DistancesPopcnt<kWords>, &DistancesAtPopcnt<kWords>, &AdmitAvx512,
                   block8};
  }
  if (isa == Isa::kAvx2) {
    DistancesFn dense = &DistancesPopcnt<kWords>;
    if (std::getenv("LINR_HAMMING_MULA") != nullptr) {
      if (kWords == 8) dense = &DistancesMulaAvx2<1>;
      if (kWords == 16) dense = &DistancesMulaAvx2<2>;
      if (kWords == 32) dense = &DistancesMulaAvx2<4>;
    }
    Block8Fn block8 = &Block8Avx2<kWords>;
    if (std::getenv("LINR_HAMMING_NO_BLOCK8") != nullptr) block8 = nullptr;
    return Kernels{isa, dense, &DistancesAtPopcnt<kWords>, &AdmitAvx2, block8};
  }
  if (isa == Isa::kPopcnt) {
    return Kernels{isa, &DistancesPopcnt<kWords>, &DistancesAtPopcnt<kWords>, &AdmitPortable,
                   nullptr};
  }
#endif
  return Kernels{Isa::kPortable, &DistancesPortable<kWords>, &DistancesAtPortable<kWords>,
                 &AdmitPortable, nullptr};
}

// The kernels for codes of `words` 32-bit words on the selected path.
inline Kernels SelectKernels(int64_t words) {
  const Isa isa = SelectIsa();
  switch (words) {
    case 1: return KernelsFor<1>(isa);
    case 2: return KernelsFor<2>(isa);
    case 3: return KernelsFor<3>(isa);
    case 4: return KernelsFor<4>(isa);
    case 8: return KernelsFor<8>(isa);
    case 16: return KernelsFor<16>(isa);
    case 32: return KernelsFor<32>(isa);
    default: return KernelsFor<0>(isa);
  }
}

}  // namespace hamming_cpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_CPU_SIMD_H_
