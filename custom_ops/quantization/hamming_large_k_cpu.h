// Counting-sort top-k of LinrHammingTopK on the CPU, for very large k (the
// "counting" path of hamming_large_k.h; host only, no TensorFlow).
//
// Items are split into shards of whole tiles of mask words (tiles of ~16 KiB
// of codes, as in hamming_cpu_scan.h), one task per shard on the caller's
// thread pool (`parallel_for(n, cost, fn(begin, end))`, e.g. TF's
// ThreadPool::ParallelFor). Per query:
//   pass 1  every shard histograms the scores (matching bits, 32 * Wc + 1
//           bins) of its passing items: counts[shard][query][score];
//   select  count = min(k, passing items); the threshold t is the largest
//           score with (items scoring >= t) >= count; above[s] = items scoring
//           > s; the base of (shard, s) = above[s] + items scoring s in
//           earlier shards;
//   pass 2  every shard walks its items again, in index order, and writes
//           each passing item scoring s >= t to slot base[s]++, if that slot
//           is < count (which takes the items scoring t by smaller index up
//           to the quota). The scores come from a byte per item kept by pass
//           1 (when 32 * Wc < 255 and B * N <= 256 MiB), else from the
//           distances recomputed (hamming_cpu_simd.h kernels, SIMD threshold
//           test: only items scoring >= t are visited).
// The result is the op's total order (score descending, ties by smaller
// index: select/ordering.h) with no sort; equal to the buffer path and to the
// CUDA counting kernel (hamming_large_k_gpu.cu.h) bit for bit. Memory beyond
// the outputs: shards * B * (32 * Wc + 1) counters and the B * N score bytes.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_CPU_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_CPU_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "custom_ops/quantization/hamming_common.h"
#include "custom_ops/quantization/hamming_cpu_simd.h"
#include "custom_ops/select/outputs.h"

namespace linr {
namespace hamming_cpu {

// Inputs in host memory: queries [batch, words], codes [num_items, words],
// mask [batch, num_words = ceil(num_items / 32)] (nullptr: every item passes);
// k >= 1.
struct CountingArgs {
  const uint32_t* queries;
  const uint32_t* codes;
  const uint32_t* mask;
  int64_t batch, words, num_items, num_words, k;
};

// Pass 1 keeps one byte of score per (query, item) for pass 2 up to this size.
constexpr int64_t kScoreCacheMaxBytes = int64_t{1} << 28;
constexpr uint8_t kNotPassing = 0xFF;  // scores are <= 32 * Wc <= 224 when cached

namespace counting_internal {

// Calls visit(item, score) for every passing item of query q in mask words
// [t, t + nt) (items first .. first + n_tile), in ascending index, whose score
// is >= min_score (min_score <= 0: every passing item).
template <typename Visit>
inline void VisitTile(const Kernels& kern, const CountingArgs& a, int64_t q, int64_t t,
                      int64_t nt, int min_score, uint16_t* dist, uint32_t* pass, uint32_t* admit,
                      int32_t* index, Visit&& visit) {
  const int bits_total = static_cast<int>(32 * a.words);
  const int64_t first = t * 32;
  const int64_t n_tile = std::min(a.num_items, (t + nt) * 32) - first;
  const uint32_t* mrow = a.mask != nullptr ? a.mask + q * a.num_words + t : nullptr;
  int64_t passing = 0;
  for (int64_t w = 0; w < nt; ++w) {
    pass[w] = (mrow != nullptr ? mrow[w] : 0xFFFFFFFFu) & HammingValidBits(t + w, a.num_items);
    passing += Popcount32(pass[w]);
  }
  if (passing == 0) return;
  const uint32_t* query = a.queries + q * a.words;
  if (4 * passing >= n_tile) {
    kern.distances(query, a.codes + first * a.words, a.words, n_tile, dist);
    for (int64_t i = n_tile; i < nt * 32; ++i) dist[i] = kPadDistance;
    // dist < limit  <=>  score > min_score - 1 (min_score <= 0: all pass).
    if (min_score > 0) kern.admit(dist, nt, bits_total - min_score + 1, admit);
    for (int64_t w = 0; w < nt; ++w) {
      uint32_t bits = min_score > 0 ? admit[w] & pass[w] : pass[w];
      while (bits != 0) {
        const int i = static_cast<int>(w * 32) + __builtin_ctz(bits);
        bits &= bits - 1;
        visit(first + i, bits_total - dist[i]);
      }
    }
    return;
  }
  int64_t n = 0;
  for (int64_t w = 0; w < nt; ++w) {
    uint32_t bits = pass[w];
    while (bits != 0) {
      index[n++] = static_cast<int32_t>(first + w * 32 + __builtin_ctz(bits));
      bits &= bits - 1;
    }
  }
  kern.distances_at(query, a.codes, a.words, index, n, dist);
  for (int64_t j = 0; j < n; ++j) {
    const int score = bits_total - dist[j];
    if (score >= min_score) visit(index[j], score);
  }
}

}  // namespace counting_internal

// Writes the top-k of every query (rank order, padding -inf / -1, counts)
// into `out` ([batch, k], [batch, k], [batch]); `threads` sizes the shards.
template <typename ParallelFor>
void CountingTopK(const Kernels& kern, const CountingArgs& a, const TopKOutputs& out,
                  int64_t threads, ParallelFor&& parallel_for) {
  if (a.batch == 0) return;
  const int64_t batch = a.batch, k = a.k;
  const int64_t bins = 32 * a.words + 1;
  const int64_t tile_words = std::max<int64_t>(1, (16 * 1024) / (128 * a.words));
  const int64_t num_tiles = (a.num_words + tile_words - 1) / tile_words;
  const int64_t shards = std::max<int64_t>(1, std::min<int64_t>(4 * std::max<int64_t>(threads, 1),
                                                                num_tiles));
  const int64_t words_per_shard = (num_tiles + shards - 1) / shards * tile_words;
  const int64_t shard_cost =
      std::max<int64_t>(1, words_per_shard * 32 * batch * a.words * 4);

  // counts[(shard * batch + q) * bins + score]; after the selection step the
  // base slot of (shard, q, score) for scores >= threshold[q].
  std::vector<int64_t> counts(shards * batch * bins, 0);
  // Scores of pass 1 kept for pass 2 (one byte an item, kNotPassing for
  // items that do not pass) when they fit in a byte and B * N bytes in
  // kScoreCacheMaxBytes; else pass 2 recomputes the distances.
  const bool cached = bins <= 255 && batch * a.num_items <= kScoreCacheMaxBytes;
  std::unique_ptr<uint8_t[]> cache(cached ? new uint8_t[batch * a.num_items] : nullptr);
  auto for_shard_tiles = [&](int64_t shard, auto&& per_tile) {
    const int64_t w_begin = std::min(a.num_words, shard * words_per_shard);
    const int64_t w_end = std::min(a.num_words, w_begin + words_per_shard);
    std::vector<uint16_t> dist(tile_words * 32);
    std::vector<uint32_t> pass(tile_words), admit(tile_words);
    std::vector<int32_t> index(tile_words * 32);
    for (int64_t t = w_begin; t < w_end; t += tile_words) {
      const int64_t nt = std::min(w_end, t + tile_words) - t;
      per_tile(t, nt, dist.data(), pass.data(), admit.data(), index.data());
    }
  };

  // Pass 1: histograms (four interleaved copies per query, so that runs of
  // equal scores do not serialise on one counter).
  parallel_for(shards, shard_cost, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> h4(4 * bins);
    for (int64_t s = begin; s < end; ++s) {
      for (int64_t q = 0; q < batch; ++q) {
        std::fill(h4.begin(), h4.end(), 0);
        int64_t* h = h4.data();
        uint8_t* row = cached ? cache.get() + q * a.num_items : nullptr;
        for_shard_tiles(s, [&](int64_t t, int64_t nt, uint16_t* dist, uint32_t* pass,
                               uint32_t* admit, int32_t* index) {
          if (row != nullptr) {
            const int64_t first = t * 32;
            std::memset(row + first, kNotPassing, std::min(a.num_items, (t + nt) * 32) - first);
            counting_internal::VisitTile(kern, a, q, t, nt, /*min_score=*/0, dist, pass, admit,
                                         index, [h, row, bins](int64_t item, int score) {
                                           ++h[(item & 3) * bins + score];
                                           row[item] = static_cast<uint8_t>(score);
                                         });
          } else {
            counting_internal::VisitTile(kern, a, q, t, nt, /*min_score=*/0, dist, pass, admit,
                                         index, [h, bins](int64_t item, int score) {
                                           ++h[(item & 3) * bins + score];
                                         });
          }
        });
        int64_t* hist = counts.data() + (s * batch + q) * bins;
        for (int64_t b = 0; b < bins; ++b) {
          hist[b] = h[b] + h[bins + b] + h[2 * bins + b] + h[3 * bins + b];
        }
      }
    }
  });

  // Selection: threshold, quota, base slots.
  std::vector<int> threshold(batch);
  std::vector<int64_t> selected(batch);
  std::vector<int64_t> total(bins);
  for (int64_t q = 0; q < batch; ++q) {
    std::fill(total.begin(), total.end(), 0);
    int64_t passing = 0;
    for (int64_t s = 0; s < shards; ++s) {
      const int64_t* hist = counts.data() + (s * batch + q) * bins;
      for (int64_t b = 0; b < bins; ++b) total[b] += hist[b];
    }
    for (int64_t b = 0; b < bins; ++b) passing += total[b];
    const int64_t sel = std::min(k, passing);
    int t = static_cast<int>(bins);  // nothing selected
    int64_t above = 0;
    for (int64_t b = bins - 1; b >= 0 && sel > 0; --b) {
      int64_t run = above;  // items scoring > b
      for (int64_t s = 0; s < shards; ++s) {
        int64_t& c = counts[(s * batch + q) * bins + b];
        const int64_t n = c;
        c = run;
        run += n;
      }
      above += total[b];
      if (above >= sel) {
        t = static_cast<int>(b);
        break;
      }
    }
    threshold[q] = t;
    selected[q] = sel;
  }

  // Pass 2: scatter to the final slots.
  parallel_for(shards, shard_cost, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end && cached; ++s) {
      const int64_t i_begin = std::min(a.num_items, s * words_per_shard * 32);
      const int64_t i_end = std::min(a.num_items, i_begin + words_per_shard * 32);
      for (int64_t q = 0; q < batch; ++q) {
        if (selected[q] == 0) continue;
        int64_t* slot = counts.data() + (s * batch + q) * bins;
        const uint8_t* row = cache.get() + q * a.num_items;
        const int64_t limit = selected[q];
        const int t = threshold[q];
        float* scores = out.scores + q * k;
        int32_t* idx = out.idx + q * k;
        for (int64_t i = i_begin; i < i_end; ++i) {
          const int c = row[i];
          if (c >= t && c != kNotPassing) {
            const int64_t pos = slot[c]++;
            if (pos < limit) {
              scores[pos] = static_cast<float>(c);
              idx[pos] = static_cast<int32_t>(i);
            }
          }
        }
      }
    }
    for (int64_t s = begin; s < end && !cached; ++s) {
      for_shard_tiles(s, [&](int64_t t, int64_t nt, uint16_t* dist, uint32_t* pass,
                             uint32_t* admit, int32_t* index) {
        for (int64_t q = 0; q < batch; ++q) {
          if (selected[q] == 0) continue;
          int64_t* slot = counts.data() + (s * batch + q) * bins;
          const int64_t limit = selected[q];
          float* scores = out.scores + q * k;
          int32_t* idx = out.idx + q * k;
          counting_internal::VisitTile(
              kern, a, q, t, nt, threshold[q], dist, pass, admit, index,
              [&](int64_t item, int score) {
                const int64_t pos = slot[score]++;
                if (pos < limit) {
                  scores[pos] = static_cast<float>(score);
                  idx[pos] = static_cast<int32_t>(item);
                }
              });
        }
      });
    }
  });

  // Counts and padding.
  parallel_for(batch, std::max<int64_t>(1, k), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      out.count[q] = static_cast<int32_t>(selected[q]);
      std::fill(out.scores + q * k + selected[q], out.scores + (q + 1) * k,
                -std::numeric_limits<float>::infinity());
      std::fill(out.idx + q * k + selected[q], out.idx + (q + 1) * k, -1);
    }
  });
}

}  // namespace hamming_cpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_CPU_H_
