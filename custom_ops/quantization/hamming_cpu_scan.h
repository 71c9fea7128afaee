// Scan of LinrHammingTopK's CPU kernel over a range of items (host only, no
// TensorFlow dependency, so bench/quant_cpu_kernel_bench.cc can time it
// directly): per-query running top-k buffers (CandidateBuffer<int>, the
// matching-bit count as score) fed in tiles of item codes.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_CPU_SCAN_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_CPU_SCAN_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "custom_ops/quantization/hamming_common.h"
#include "custom_ops/quantization/hamming_cpu_simd.h"
#include "custom_ops/select/candidate_buffer.h"

namespace linr {
namespace hamming_cpu {

// Passing items of mask words [t, t + nt) of one query row (bits past
// num_items ignored): run once per (tile, query), so the POPCNT build of it
// matters at B = 64 (the portable one is a SWAR count).
inline int64_t CountPassingPortable(const uint32_t* mrow, int64_t t, int64_t nt,
                                    int64_t num_items) {
  int64_t count = 0;
  for (int64_t w = 0; w < nt; ++w) count += Popcount32(mrow[w] & HammingValidBits(t + w, num_items));
  return count;
}
#if LINR_HAMMING_X86
__attribute__((target("popcnt"))) inline int64_t CountPassingPopcnt(const uint32_t* mrow,
                                                                    int64_t t, int64_t nt,
                                                                    int64_t num_items) {
  int64_t count = 0;
  for (int64_t w = 0; w < nt; ++w) {
    count += __builtin_popcount(mrow[w] & HammingValidBits(t + w, num_items));
  }
  return count;
}
#endif

inline int64_t CountPassing(Isa isa, const uint32_t* mrow, int64_t t, int64_t nt,
                            int64_t num_items) {
#if LINR_HAMMING_X86
  if (isa != Isa::kPortable) return CountPassingPopcnt(mrow, t, nt, num_items);
#endif
  return CountPassingPortable(mrow, t, nt, num_items);
}

// Scores mask words [w_begin, w_end) of every query into `buffers` ([batch]).
// The range is walked in tiles of `tile_words` mask words whose codes fit in
// L1 (~16 KiB); every query scores a tile before the next tile is read, so a
// tile's codes come from memory once per call, not once per query. Per
// (query, tile): a tile with at least a quarter of its items passing is
// scored densely (all distances, then a SIMD threshold test against the
// buffer's current k-th best, then only admitted passing items are pushed);
// a sparser tile scores just its passing items. Items are pushed in
// ascending index per query, so `score > threshold` keeps ties by index.
void ScanRange(const Kernels& kern, const uint32_t* queries, const uint32_t* codes,
               const uint32_t* mask, int64_t batch, int64_t words, int64_t num_items,
               int64_t num_words, int64_t w_begin, int64_t w_end, int64_t tile_words,
               CandidateBuffer<int>* buffers) {
  const int bits_total = static_cast<int>(32 * words);
  std::vector<uint16_t> dist(tile_words * 32);
  std::vector<uint32_t> admit(tile_words);
  std::vector<uint32_t> pass(tile_words);
  std::vector<int32_t> index(tile_words * 32);
  // Query blocks of 8 (Block8 path): nibble-split queries, limits.
  const int64_t num_blocks = kern.block8 != nullptr ? (batch + 7) / 8 : 0;
  std::vector<uint32_t> qsplit(num_blocks * words * 16);
  for (int64_t blk = 0; blk < num_blocks; ++blk) {
    SplitQueryBlock(queries + blk * 8 * words, std::min<int64_t>(8, batch - blk * 8), words,
                    qsplit.data() + blk * words * 16);
  }
  std::vector<uint32_t> xsplit(num_blocks > 0 ? tile_words * 32 * words * 2 : 0);
  std::vector<int64_t> passing(batch);
  for (int64_t t = w_begin; t < w_end; t += tile_words) {
    const int64_t nt = std::min(w_end, t + tile_words) - t;
    const int64_t first = t * 32;
    const int64_t n_tile = std::min(num_items, (t + nt) * 32) - first;
    const uint32_t* tile_codes = codes + first * words;
    bool split_done = false;
    for (int64_t q0 = 0; q0 < batch; q0 += 8) {
      const int64_t nq = std::min<int64_t>(8, batch - q0);
      int64_t block_passing = 0;
      for (int64_t q = q0; q < q0 + nq; ++q) {
        const int64_t count = CountPassing(kern.isa, mask + q * num_words + t, t, nt, num_items);
        passing[q] = count;
        block_passing += count;
      }
      if (num_blocks > 0 && nq >= 4 && 4 * block_passing >= nq * n_tile) {
        // Dense block: all items against the 8 queries at once.
        if (!split_done) {
          SplitNibbles(tile_codes, n_tile * words, xsplit.data());
          split_done = true;
        }
        const uint32_t* qs = qsplit.data() + (q0 / 8) * words * 16;
        alignas(32) int32_t limits[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = 0; j < nq; ++j) limits[j] = bits_total - buffers[q0 + j].Threshold();
        alignas(32) int32_t d8[8];
        uint32_t hits = 0;
        for (int64_t i = 0; i < n_tile; ++i) {
          i = kern.block8(qs, xsplit.data(), words, i, n_tile, limits, &hits, d8);
          if (i >= n_tile) break;
          const int64_t item = first + i;
          while (hits != 0) {
            const int j = __builtin_ctz(hits);
            hits &= hits - 1;
            const uint32_t* mrow = mask + (q0 + j) * num_words;
            if (!((mrow[item >> 5] >> (item & 31)) & 1u)) continue;
            CandidateBuffer<int>& buf = buffers[q0 + j];
            const int score = bits_total - d8[j];
            if (score > buf.Threshold()) {
              buf.Push(score, static_cast<int32_t>(item));
              limits[j] = bits_total - buf.Threshold();
            }
          }
        }
        continue;
      }
      for (int64_t q = q0; q < q0 + nq; ++q) {
        if (passing[q] == 0) continue;
        const uint32_t* mrow = mask + q * num_words + t;
        for (int64_t w = 0; w < nt; ++w) pass[w] = mrow[w] & HammingValidBits(t + w, num_items);
        CandidateBuffer<int>& buf = buffers[q];
        const uint32_t* query = queries + q * words;
        if (4 * passing[q] >= n_tile) {
          kern.distances(query, tile_codes, words, n_tile, dist.data());
          for (int64_t i = n_tile; i < nt * 32; ++i) dist[i] = kPadDistance;
          // dist < limit  <=>  score > threshold.
          kern.admit(dist.data(), nt, bits_total - buf.Threshold(), admit.data());
          for (int64_t w = 0; w < nt; ++w) {
            uint32_t bits = admit[w] & pass[w];
            while (bits != 0) {
              const int i = static_cast<int>(w * 32) + __builtin_ctz(bits);
              bits &= bits - 1;
              const int score = bits_total - dist[i];
              if (score > buf.Threshold()) buf.Push(score, static_cast<int32_t>(first + i));
            }
          }
        } else {
          int64_t n = 0;
          for (int64_t w = 0; w < nt; ++w) {
            uint32_t bits = pass[w];
            while (bits != 0) {
              index[n++] = static_cast<int32_t>(first + w * 32 + __builtin_ctz(bits));
              bits &= bits - 1;
            }
          }
          kern.distances_at(query, codes, words, index.data(), n, dist.data());
          for (int64_t j = 0; j < n; ++j) {
            const int score = bits_total - dist[j];
            if (score > buf.Threshold()) buf.Push(score, index[j]);
          }
        }
      }
    }
  }
}

}  // namespace hamming_cpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_CPU_SCAN_H_
