// CPU scan of LinrAsymmetricHammingTopK over a range of items (host only, no
// TensorFlow dependency): per tile of mask words, each query's passing items
// get their integer parts (popcount of the code, bit-sliced plane dot
// product; asym_cpu_simd.h), then their float score (AsymScore,
// asym_common.h, in plain scalar code so every ISA path rounds alike) and a
// running top-k (CandidateBuffer<float>).
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_ASYM_CPU_SCAN_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_ASYM_CPU_SCAN_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "custom_ops/quantization/asym_common.h"
#include "custom_ops/quantization/asym_cpu_simd.h"
#include "custom_ops/quantization/hamming_common.h"
#include "custom_ops/select/candidate_buffer.h"

namespace linr {
namespace asym_cpu {

// One query: planes [bits][words] of its quantized projection, lo, delta and
// u = sum_p 2^p popcount(plane_p).
struct Query {
  const uint32_t* planes;
  int bits;
  float lo, delta;
  int32_t u;
};

inline int32_t PlaneTotal(const uint32_t* planes, int bits, int64_t words) {
  int32_t u = 0;
  for (int p = 0; p < bits; ++p) u += AsymCodeOnes(planes + p * words, words) << p;
  return u;
}

// Scores mask words [w_begin, w_end) of every query into `buffers` ([batch]),
// in tiles of `tile_words` mask words whose codes stay in L1 while every
// query scores the tile. Items are pushed in ascending index per query, so
// the strict test !(score <= threshold) keeps ties by index (and admits NaN,
// ranked -inf, like the float top-k ops).
inline void ScanRange(const Kernels& kern, const Query* queries, const uint32_t* codes,
                      const float* factors, const uint32_t* mask, int64_t batch, int64_t words,
                      int64_t num_items, int64_t num_words, int64_t w_begin, int64_t w_end,
                      int64_t tile_words, CandidateBuffer<float>* buffers) {
  const int32_t m = static_cast<int32_t>(32 * words);
  std::vector<int32_t> index(tile_words * 32), ones(tile_words * 32), dot(tile_words * 32);
  for (int64_t t = w_begin; t < w_end; t += tile_words) {
    const int64_t nt = std::min(w_end, t + tile_words) - t;
    for (int64_t q = 0; q < batch; ++q) {
      const uint32_t* mrow = mask + q * num_words + t;
      int64_t n = 0;
      for (int64_t w = 0; w < nt; ++w) {
        uint32_t bits = mrow[w] & HammingValidBits(t + w, num_items);
        while (bits != 0) {
          index[n++] = static_cast<int32_t>((t + w) * 32 + __builtin_ctz(bits));
          bits &= bits - 1;
        }
      }
      if (n == 0) continue;
      const Query& qy = queries[q];
      kern.parts(qy.planes, qy.bits, codes, words, index.data(), n, ones.data(), dot.data());
      CandidateBuffer<float>& buf = buffers[q];
      for (int64_t j = 0; j < n; ++j) {
        const float score =
            AsymScore(ones[j], dot[j], qy.u, m, qy.lo, qy.delta, factors[index[j]]);
        if (!(score <= buf.Threshold())) buf.Push(score, index[j]);
      }
    }
  }
}

}  // namespace asym_cpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_ASYM_CPU_SCAN_H_
