// Input checks shared by every top-k op over a pass mask (float and 1-bit,
// CPU and GPU kernels), so all reject bad input with the same messages. Host
// only.
#ifndef LINR_CUSTOM_OPS_SELECT_VALIDATE_H_
#define LINR_CUSTOM_OPS_SELECT_VALIDATE_H_

#include <cstdint>
#include <limits>

#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Checks shared by every top-k op over a pass mask: ranks of (queries [B, X],
// items [N, X], mask [B, ceil(N/32)], k scalar), k > 0, the mask's shape and
// N < 2^31; stores k (k_tensor must be in host memory). The widths X are
// checked by the caller, whose message knows what a width means.
inline absl::Status ValidateMaskedTopKShapes(const char* op, const char* query_name,
                                             const char* item_name,
                                             const tensorflow::Tensor& queries,
                                             const tensorflow::Tensor& items,
                                             const tensorflow::Tensor& mask,
                                             const tensorflow::Tensor& k_tensor, int64_t* k) {
  namespace errors = ::tensorflow::errors;
  auto rank_error = [op](const char* name, int rank, const tensorflow::Tensor& t) {
    return errors::InvalidArgument(op, ": ", name, " must have rank ", rank, ", got shape ",
                                   t.shape().DebugString());
  };
  if (queries.dims() != 2) return rank_error(query_name, 2, queries);
  if (items.dims() != 2) return rank_error(item_name, 2, items);
  if (mask.dims() != 2) return rank_error("mask", 2, mask);
  if (!tensorflow::TensorShapeUtils::IsScalar(k_tensor.shape())) {
    return rank_error("k", 0, k_tensor);
  }
  const int64_t batch = queries.dim_size(0);
  const int64_t num_items = items.dim_size(0);
  *k = k_tensor.scalar<int32_t>()();
  if (*k <= 0) return errors::InvalidArgument(op, ": k must be positive, got ", *k);
  if (mask.dim_size(0) != batch) {
    return errors::InvalidArgument(op, ": batch size B mismatch: ", query_name, " ", batch,
                                   ", mask ", mask.dim_size(0));
  }
  if (mask.dim_size(1) != (num_items + 31) / 32) {
    return errors::InvalidArgument(op, ": mask words M mismatch: N=", num_items,
                                   " items need M=ceil(N/32)=", (num_items + 31) / 32,
                                   " words but mask has M=", mask.dim_size(1));
  }
  if (num_items > std::numeric_limits<int32_t>::max()) {
    return errors::InvalidArgument(op, ": too many items for int32 indices: ", num_items);
  }
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_VALIDATE_H_
