// Rank order of every top-k op (float and 1-bit scores, CPU and CUDA): higher
// score first; equal scores -> smaller item index first. NaN scores are ranked
// as -inf so that the order stays a strict weak ordering.
#ifndef LINR_CUSTOM_OPS_SELECT_ORDERING_H_
#define LINR_CUSTOM_OPS_SELECT_ORDERING_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace linr {

struct ScoredItem {
  float score;
  int32_t index;
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

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_ORDERING_H_
