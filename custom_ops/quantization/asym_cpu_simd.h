// CPU building blocks of LinrAsymmetricHammingTopK (host only, no TensorFlow
// dependency): the integer parts of the asymmetric score (asym_common.h),
// ones = popcount(code) and dot = sum_p 2^p popcount(code AND plane_p), a
// bit-sliced popcount over the query's Bq planes: `parts` for a list of
// items (sparse tiles), `dense` (dot only, for a contiguous run of codes;
// unrolled over Bq in {1, 2, 4, 8}) for tiles most of whose items pass.
//
// Three instruction-set paths compute exactly the same integers:
//   portable    plain C++ (64-bit __builtin_popcountll without -mpopcnt);
//   popcnt      the same loops with the POPCNT instruction;
//   avx512      AVX-512 VPOPCNTDQ for codes of 128, 256 or 512 bits: a
//               512-bit register holds 4 / 2 / 1 codes, ANDed with the plane
//               broadcast and counted per 64-bit lane in one instruction
//               (not exercised on a CPU without it: the GPU machine's host,
//               Sapphire Rapids, has it; tests/gpu compares it with the GPU).
// $LINR_CPU_ISA=portable forces the portable path, =popcnt caps at POPCNT;
// otherwise the best path the CPU supports is chosen once at run time.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_ASYM_CPU_SIMD_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_ASYM_CPU_SIMD_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LINR_ASYM_X86 1
#else
#define LINR_ASYM_X86 0
#endif

namespace linr {
namespace asym_cpu {

// ones[j], dot[j] for the codes at index[j], j < n (codes: rows of `words`).
using PartsFn = void (*)(const uint32_t* planes, int bits, const uint32_t* codes,
                         int64_t words, const int32_t* index, int64_t n, int32_t* ones,
                         int32_t* dot);

// dot[i] for the n contiguous codes at `codes`.
using DenseFn = void (*)(const uint32_t* planes, int bits, const uint32_t* codes,
                         int64_t words, int64_t n, int32_t* dot);

struct Kernels {
  PartsFn parts;
  DenseFn dense;
  const char* isa;
};

// ---------------------------------------------------------------- portable
template <int kWords>
inline __attribute__((always_inline)) void PartsBody(const uint32_t* planes, int bits,
                                                     const uint32_t* codes, int64_t words,
                                                     const int32_t* index, int64_t n,
                                                     int32_t* ones, int32_t* dot) {
  const int64_t nw = kWords > 0 ? kWords : words;
  const bool wide = nw % 2 == 0;
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t* c = codes + static_cast<int64_t>(index[j]) * nw;
    int32_t o = 0, s = 0;
    if (wide) {
      for (int64_t w = 0; w < nw; w += 2) {
        uint64_t x;
        std::memcpy(&x, c + w, 8);
        o += __builtin_popcountll(x);
        for (int p = 0; p < bits; ++p) {
          uint64_t y;
          std::memcpy(&y, planes + p * nw + w, 8);
          s += __builtin_popcountll(x & y) << p;
        }
      }
    } else {
      for (int64_t w = 0; w < nw; ++w) {
        o += __builtin_popcount(c[w]);
        for (int p = 0; p < bits; ++p) s += __builtin_popcount(c[w] & planes[p * nw + w]) << p;
      }
    }
    ones[j] = o;
    dot[j] = s;
  }
}

template <int kWords>
void PartsPortable(const uint32_t* planes, int bits, const uint32_t* codes, int64_t words,
                   const int32_t* index, int64_t n, int32_t* ones, int32_t* dot) {
  PartsBody<kWords>(planes, bits, codes, words, index, n, ones, dot);
}

// kBits > 0: the plane loop unrolled; kBits == 0: `bits` planes.
template <int kWords, int kBits>
inline __attribute__((always_inline)) void DenseBody(const uint32_t* planes, int bits,
                                                     const uint32_t* codes, int64_t words,
                                                     int64_t n, int32_t* dot) {
  const int64_t nw = kWords > 0 ? kWords : words;
  const int nb = kBits > 0 ? kBits : bits;
  if (kWords > 0 && kWords % 2 == 0) {
    constexpr int kQ = kWords / 2 > 0 ? kWords / 2 : 1;
    uint64_t pl[kAsymMaxQueryBits][kQ];
    for (int p = 0; p < nb; ++p) std::memcpy(pl[p], planes + p * nw, 8 * kQ);
    for (int64_t i = 0; i < n; ++i) {
      uint64_t x[kQ];
      std::memcpy(x, codes + i * nw, 8 * kQ);
      int32_t s = 0;
      for (int p = 0; p < nb; ++p) {
        int32_t c = 0;
        for (int w = 0; w < kQ; ++w) c += __builtin_popcountll(x[w] & pl[p][w]);
        s += c << p;
      }
      dot[i] = s;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t* c = codes + i * nw;
    int32_t s = 0;
    for (int p = 0; p < nb; ++p) {
      int32_t cnt = 0;
      for (int64_t w = 0; w < nw; ++w) cnt += __builtin_popcount(c[w] & planes[p * nw + w]);
      s += cnt << p;
    }
    dot[i] = s;
  }
}

template <int kWords, int kBits>
void DensePortable(const uint32_t* planes, int bits, const uint32_t* codes, int64_t words,
                   int64_t n, int32_t* dot) {
  DenseBody<kWords, kBits>(planes, bits, codes, words, n, dot);
}

#if LINR_ASYM_X86
// ------------------------------------------------------------------ POPCNT
template <int kWords>
__attribute__((target("popcnt"))) void PartsPopcnt(const uint32_t* planes, int bits,
                                                   const uint32_t* codes, int64_t words,
                                                   const int32_t* index, int64_t n,
                                                   int32_t* ones, int32_t* dot) {
  PartsBody<kWords>(planes, bits, codes, words, index, n, ones, dot);
}

template <int kWords, int kBits>
__attribute__((target("popcnt"))) void DensePopcnt(const uint32_t* planes, int bits,
                                                   const uint32_t* codes, int64_t words,
                                                   int64_t n, int32_t* dot) {
  DenseBody<kWords, kBits>(planes, bits, codes, words, n, dot);
}

// --------------------------------------------------------- AVX-512 VPOPCNTDQ
// kWords in {4, 8, 16}: 16 / kWords codes per 512-bit register, kWords / 2
// 64-bit lanes each.
#define LINR_ASYM_AVX512 __attribute__((target("avx512f,avx512vpopcntdq")))
template <int kWords>
LINR_ASYM_AVX512 void PartsAvx512(const uint32_t* planes, int bits, const uint32_t* codes,
                                  int64_t words, const int32_t* index, int64_t n,
                                  int32_t* ones, int32_t* dot) {
  static_assert(kWords == 4 || kWords == 8 || kWords == 16, "128/256/512-bit codes");
  constexpr int kPer = 16 / kWords;  // codes per register
  constexpr int kLanes = kWords / 2;  // 64-bit lanes per code
  __m512i plane[kAsymMaxQueryBits];
  for (int p = 0; p < bits; ++p) {
    alignas(64) uint32_t rep[16];
    for (int r = 0; r < kPer; ++r) std::memcpy(rep + r * kWords, planes + p * kWords, 4 * kWords);
    plane[p] = _mm512_load_si512(rep);
  }
  int64_t j = 0;
  for (; j + kPer <= n; j += kPer) {
    alignas(64) uint32_t buf[16];
    for (int r = 0; r < kPer; ++r) {
      std::memcpy(buf + r * kWords, codes + static_cast<int64_t>(index[j + r]) * kWords,
                  4 * kWords);
    }
    const __m512i x = _mm512_load_si512(buf);
    const __m512i o = _mm512_popcnt_epi64(x);
    __m512i s = _mm512_setzero_si512();
    for (int p = 0; p < bits; ++p) {
      const __m512i c = _mm512_popcnt_epi64(_mm512_and_si512(x, plane[p]));
      s = _mm512_add_epi64(s, _mm512_sllv_epi64(c, _mm512_set1_epi64(p)));
    }
    alignas(64) int64_t ol[8], sl[8];
    _mm512_store_si512(ol, o);
    _mm512_store_si512(sl, s);
    for (int r = 0; r < kPer; ++r) {
      int64_t oo = 0, ss = 0;
      for (int l = 0; l < kLanes; ++l) {
        oo += ol[r * kLanes + l];
        ss += sl[r * kLanes + l];
      }
      ones[j + r] = static_cast<int32_t>(oo);
      dot[j + r] = static_cast<int32_t>(ss);
    }
  }
  if (j < n) PartsBody<kWords>(planes, bits, codes, words, index + j, n - j, ones + j, dot + j);
}

// Contiguous codes: 16 / kWords codes per 64-byte load.
template <int kWords, int kBits>
LINR_ASYM_AVX512 void DenseAvx512(const uint32_t* planes, int bits, const uint32_t* codes,
                                  int64_t words, int64_t n, int32_t* dot) {
  static_assert(kWords == 4 || kWords == 8 || kWords == 16, "128/256/512-bit codes");
  constexpr int kPer = 16 / kWords;
  constexpr int kLanes = kWords / 2;
  const int nb = kBits > 0 ? kBits : bits;
  __m512i plane[kAsymMaxQueryBits];
  for (int p = 0; p < nb; ++p) {
    alignas(64) uint32_t rep[16];
    for (int r = 0; r < kPer; ++r) std::memcpy(rep + r * kWords, planes + p * kWords, 4 * kWords);
    plane[p] = _mm512_load_si512(rep);
  }
  int64_t j = 0;
  for (; j + kPer <= n; j += kPer) {
    const __m512i x = _mm512_loadu_si512(codes + j * kWords);
    __m512i s = _mm512_setzero_si512();
    for (int p = 0; p < nb; ++p) {
      const __m512i c = _mm512_popcnt_epi64(_mm512_and_si512(x, plane[p]));
      s = _mm512_add_epi64(s, _mm512_sllv_epi64(c, _mm512_set1_epi64(p)));
    }
    alignas(64) int64_t sl[8];
    _mm512_store_si512(sl, s);
    for (int r = 0; r < kPer; ++r) {
      int64_t ss = 0;
      for (int l = 0; l < kLanes; ++l) ss += sl[r * kLanes + l];
      dot[j + r] = static_cast<int32_t>(ss);
    }
  }
  if (j < n) DenseBody<kWords, kBits>(planes, bits, codes + j * kWords, words, n - j, dot + j);
}
#endif  // LINR_ASYM_X86

// The widths with a specialised loop; others take the generic one.
#define LINR_ASYM_BY_WIDTH(FN, words)                                         \
  ((words) == 2 ? &FN<2> : (words) == 4 ? &FN<4> : (words) == 8 ? &FN<8>       \
                         : (words) == 16 ? &FN<16> : &FN<0>)
// Dense kernels by (width, Bq): Bq in {1, 2, 4, 8} unrolled, others generic.
#define LINR_ASYM_BY_BITS(FN, W, bits)                                        \
  ((bits) == 1 ? &FN<W, 1> : (bits) == 2 ? &FN<W, 2> : (bits) == 4 ? &FN<W, 4> \
                           : (bits) == 8 ? &FN<W, 8> : &FN<W, 0>)
#define LINR_ASYM_DENSE(FN, words, bits)                                      \
  ((words) == 2 ? LINR_ASYM_BY_BITS(FN, 2, bits)                               \
   : (words) == 4 ? LINR_ASYM_BY_BITS(FN, 4, bits)                             \
   : (words) == 8 ? LINR_ASYM_BY_BITS(FN, 8, bits)                             \
   : (words) == 16 ? LINR_ASYM_BY_BITS(FN, 16, bits) : LINR_ASYM_BY_BITS(FN, 0, bits))

// The kernels for codes of `words` words and queries of `bits` planes.
inline Kernels SelectKernels(int64_t words, int bits) {
  const char* env = std::getenv("LINR_CPU_ISA");
  const bool portable = env != nullptr && std::strcmp(env, "portable") == 0;
  const bool cap_popcnt = env != nullptr && std::strcmp(env, "popcnt") == 0;
  if (!portable) {
#if LINR_ASYM_X86
    static const bool has_popcnt = __builtin_cpu_supports("popcnt");
    static const bool has_avx512 = has_popcnt && __builtin_cpu_supports("avx512f") &&
                                   __builtin_cpu_supports("avx512vpopcntdq");
    if (has_avx512 && !cap_popcnt && (words == 4 || words == 8 || words == 16)) {
      const PartsFn parts =
          words == 4 ? &PartsAvx512<4> : words == 8 ? &PartsAvx512<8> : &PartsAvx512<16>;
      const DenseFn dense = words == 4   ? LINR_ASYM_BY_BITS(DenseAvx512, 4, bits)
                            : words == 8 ? LINR_ASYM_BY_BITS(DenseAvx512, 8, bits)
                                         : LINR_ASYM_BY_BITS(DenseAvx512, 16, bits);
      return {parts, dense, "avx512"};
    }
    if (has_popcnt) {
      return {LINR_ASYM_BY_WIDTH(PartsPopcnt, words), LINR_ASYM_DENSE(DensePopcnt, words, bits),
              "popcnt"};
    }
#endif
  }
  return {LINR_ASYM_BY_WIDTH(PartsPortable, words), LINR_ASYM_DENSE(DensePortable, words, bits),
          "portable"};
}

#undef LINR_ASYM_BY_WIDTH
#undef LINR_ASYM_BY_BITS
#undef LINR_ASYM_DENSE

}  // namespace asym_cpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_ASYM_CPU_SIMD_H_
