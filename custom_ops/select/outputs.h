// Outputs of every top-k op (LinrMaskedTopK, LinrPrefilterTopK,
// LinrHammingTopK; CPU and GPU): scores float32 [B, k], indices int32 [B, k]
// (-inf / -1 past the count), count int32 [B]. Raw pointers (host or device
// memory), no TensorFlow; allocated by AllocateTopKOutputs (allocate_outputs.h).
#ifndef LINR_CUSTOM_OPS_SELECT_OUTPUTS_H_
#define LINR_CUSTOM_OPS_SELECT_OUTPUTS_H_

#include <cstdint>

namespace linr {

struct TopKOutputs {
  float* scores;
  int32_t* idx;
  int32_t* count;
};

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_OUTPUTS_H_
