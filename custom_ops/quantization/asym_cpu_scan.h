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
// query scores the tile; popcount(code) is computed once per tile. Per
// (query, tile): with at least a quarter of the tile passing, every code is
// scored (`dense`, contiguous loads, vectorisable float step), then only
// passing items are tested; a sparser tile scores just its passing items
// (`parts` over their indices). Items are pushed in ascending index per
// query, so the strict test !(score <= threshold) keeps ties by index (and
// admits NaN, ranked -inf, like the float top-k ops).
inline void ScanRange(const Kernels& kern, const Query* queries, const uint32_t* codes,
                      const float* factors, const uint32_t* mask, int64_t batch, int64_t words,
                      int64_t num_items, int64_t num_words, int64_t w_begin, int64_t w_end,
                      int64_t tile_words, CandidateBuffer<float>* buffers) {
  const int32_t m = static_cast<int32_t>(32 * words);
  const int64_t cap = tile_words * 32;
  std::vector<int32_t> index(cap), ones(cap), tile_ones(cap), dot(cap);
  std::vector<float> score(cap, 0.0f);  // slots past N: never passing
  for (int64_t t = w_begin; t < w_end; t += tile_words) {
    const int64_t nt = std::min(w_end, t + tile_words) - t;
    const int64_t first = t * 32;
    const int64_t n_tile = std::min(num_items, (t + nt) * 32) - first;
    const uint32_t* tile_codes = codes + first * words;
    bool ones_done = false;
    for (int64_t q = 0; q < batch; ++q) {
      const uint32_t* mrow = mask + q * num_words + t;
      int64_t passing = 0;
      for (int64_t w = 0; w < nt; ++w) {
        passing += Popcount32(mrow[w] & HammingValidBits(t + w, num_items));
      }
      if (passing == 0) continue;
      const Query& qy = queries[q];
      CandidateBuffer<float>& buf = buffers[q];
      if (4 * passing >= n_tile) {
        if (!ones_done) {
          for (int64_t i = 0; i < n_tile; ++i) {
            tile_ones[i] = AsymCodeOnes(tile_codes + i * words, words);
          }
          ones_done = true;
        }
        kern.dense(qy.planes, qy.bits, tile_codes, words, n_tile, dot.data());
        const float* f = factors + first;
        for (int64_t i = 0; i < n_tile; ++i) {
          score[i] = AsymScore(tile_ones[i], dot[i], qy.u, m, qy.lo, qy.delta, f[i]);
        }
        for (int64_t w = 0; w < nt; ++w) {
          uint32_t bits = mrow[w] & HammingValidBits(t + w, num_items);
          if (bits == 0) continue;
          // Branch-free threshold test of the word's 32 scores, then only the
          // admitted passing items (the threshold only rises within a word,
          // so admitting by the word's starting threshold is safe).
          const float thr = buf.Threshold();
          uint32_t admit = 0;
          for (int b = 0; b < 32; ++b) {
            admit |= static_cast<uint32_t>(!(score[w * 32 + b] <= thr)) << b;
          }
          bits &= admit;
          while (bits != 0) {
            const int i = static_cast<int>(w * 32) + __builtin_ctz(bits);
            bits &= bits - 1;
            if (!(score[i] <= buf.Threshold())) {
              buf.Push(score[i], static_cast<int32_t>(first + i));
            }
          }
        }
        continue;
      }
      int64_t n = 0;
      for (int64_t w = 0; w < nt; ++w) {
        uint32_t bits = mrow[w] & HammingValidBits(t + w, num_items);
        while (bits != 0) {
          index[n++] = static_cast<int32_t>((t + w) * 32 + __builtin_ctz(bits));
          bits &= bits - 1;
        }
      }
      kern.parts(qy.planes, qy.bits, codes, words, index.data(), n, ones.data(), dot.data());
      for (int64_t j = 0; j < n; ++j) {
        const float sc =
            AsymScore(ones[j], dot[j], qy.u, m, qy.lo, qy.delta, factors[index[j]]);
        if (!(sc <= buf.Threshold())) buf.Push(sc, index[j]);
      }
    }
  }
}

}  // namespace asym_cpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_ASYM_CPU_SCAN_H_
