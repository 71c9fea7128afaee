// Scoring rules of LinrMaskedTopK / LinrPrefilterTopK (host/device). The rank
// order of the results is select/ordering.h's.
#ifndef LINR_CUSTOM_OPS_TOPK_TOPK_COMMON_H_
#define LINR_CUSTOM_OPS_TOPK_TOPK_COMMON_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"
#include "custom_ops/select/ordering.h"

namespace linr {

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
