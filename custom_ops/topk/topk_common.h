// Scoring and ordering rules of LinrMaskedTopK, shared by the CPU kernel and a
// future CUDA kernel.
//
// Order: higher score first; equal scores -> smaller item index first. NaN
// scores are ranked as -inf so that the order stays a strict weak ordering.
#ifndef LINR_CUSTOM_OPS_TOPK_TOPK_COMMON_H_
#define LINR_CUSTOM_OPS_TOPK_TOPK_COMMON_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace linr {

struct ScoredItem {
  float score;
  int32_t index;
};

// Output buffers of a top-k op (host or device memory): scores [B, k],
// indices [B, k] (-inf / -1 past the count), count [B].
struct TopKOutputs {
  float* scores;
  int32_t* idx;
  int32_t* count;
};

// Total order used everywhere: true when `a` ranks strictly before `b`.
LINR_HOST_DEVICE LINR_FORCE_INLINE bool RanksBefore(float a_score, int32_t a_index,
                                                    float b_score, int32_t b_index) {
  return a_score > b_score || (a_score == b_score && a_index < b_index);
}

LINR_HOST_DEVICE LINR_FORCE_INLINE bool RanksBefore(const ScoredItem& a,
                                                    const ScoredItem& b) {
  return RanksBefore(a.score, a.index, b.score, b.index);
}

// Maps NaN to -inf; all other values unchanged.
LINR_HOST_DEVICE LINR_FORCE_INLINE float RankableScore(float s) {
  return s != s ? -__builtin_huge_valf() : s;
}

// Dot product of a float32 query with one item row of type T, accumulated in
// float32. Eight independent partial sums let the compiler vectorise the loop
// without -ffast-math; the summation order is fixed, so results are
// deterministic.
template <typename T>
LINR_HOST_DEVICE LINR_FORCE_INLINE float DotProduct(const float* query, const T* item,
                                                    int64_t dim) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    for (int t = 0; t < 8; ++t) {
      acc[t] += query[j + t] * static_cast<float>(item[j + t]);
    }
  }
  float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
              ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; j < dim; ++j) sum += query[j] * static_cast<float>(item[j]);
  return sum;
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_TOPK_TOPK_COMMON_H_
