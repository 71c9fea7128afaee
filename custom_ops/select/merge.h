// Final step of the CPU top-k kernels: merge one query's per-shard candidates
// into the op's outputs (best k in rank order, then -inf / -1 padding).
#ifndef LINR_CUSTOM_OPS_SELECT_MERGE_H_
#define LINR_CUSTOM_OPS_SELECT_MERGE_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/platform/threadpool.h"

namespace linr {

// partial[shard * batch + b] holds shard's candidates for query b (any order).
// Writes scores/indices row b ([k] each) and counts[b] = kept candidates.
inline void MergeShardsForQuery(const std::vector<std::vector<ScoredItem>>& partial,
                                int64_t num_shards, int64_t batch, int64_t k, int64_t b,
                                float* scores, int32_t* indices, int32_t* counts) {
  std::vector<ScoredItem> merged;
  for (int64_t shard = 0; shard < num_shards; ++shard) {
    const auto& part = partial[shard * batch + b];
    merged.insert(merged.end(), part.begin(), part.end());
  }
  const int64_t kept = std::min<int64_t>(k, merged.size());
  auto by_rank = [](const ScoredItem& x, const ScoredItem& y) { return RanksBefore(x, y); };
  // Select, then sort only the kept prefix (faster than partial_sort for large k).
  if (kept > 0 && kept < static_cast<int64_t>(merged.size())) {
    std::nth_element(merged.begin(), merged.begin() + (kept - 1), merged.end(), by_rank);
  }
  std::sort(merged.begin(), merged.begin() + kept, by_rank);
  for (int64_t j = 0; j < kept; ++j) {
    scores[b * k + j] = merged[j].score;
    indices[b * k + j] = merged[j].index;
  }
  for (int64_t j = kept; j < k; ++j) {
    scores[b * k + j] = -std::numeric_limits<float>::infinity();
    indices[b * k + j] = -1;
  }
  counts[b] = static_cast<int32_t>(kept);
}

// MergeShardsForQuery for every query of the batch, in parallel on `pool`.
inline void MergeShards(tensorflow::thread::ThreadPool* pool,
                        const std::vector<std::vector<ScoredItem>>& partial, int64_t num_shards,
                        int64_t batch, int64_t k, const TopKOutputs& out) {
  const int64_t cost = std::max<int64_t>(1, num_shards * k * 8);
  pool->ParallelFor(batch, cost, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      MergeShardsForQuery(partial, num_shards, batch, k, b, out.scores, out.idx, out.count);
    }
  });
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_MERGE_H_
