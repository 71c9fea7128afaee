// Input checks of LinrMaskedTopK / LinrPrefilterTopK, shared by the CPU and GPU
// kernels so both reject bad input with the same messages. Host only.
#ifndef LINR_CUSTOM_OPS_TOPK_TOPK_VALIDATE_H_
#define LINR_CUSTOM_OPS_TOPK_TOPK_VALIDATE_H_

#include <cstdint>

#include "custom_ops/select/validate.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// LinrMaskedTopK / LinrPrefilterTopK: queries [B, d], items [N, d].
inline absl::Status ValidateTopKInputs(const char* op, const tensorflow::Tensor& queries,
                                       const tensorflow::Tensor& items,
                                       const tensorflow::Tensor& mask,
                                       const tensorflow::Tensor& k_tensor, int64_t* k) {
  absl::Status status =
      ValidateMaskedTopKShapes(op, "queries", "items", queries, items, mask, k_tensor, k);
  if (!status.ok()) return status;
  if (items.dim_size(1) != queries.dim_size(1)) {
    return tensorflow::errors::InvalidArgument(
        op, ": embedding dimension d mismatch: queries have d=", queries.dim_size(1),
        " but items have d=", items.dim_size(1));
  }
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_TOPK_TOPK_VALIDATE_H_
