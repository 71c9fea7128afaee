// Input checks of LinrAsymmetricHammingTopK (CPU and GPU kernels reject bad
// input with the same messages). Host only.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_ASYM_VALIDATE_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_ASYM_VALIDATE_H_

#include <cstdint>

#include "custom_ops/quantization/asym_common.h"
#include "custom_ops/select/validate.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Checks query_planes [B, Bq, Wc] (1 <= Bq <= 8), query_scales [B, 2],
// item_codes [N, Wc], item_factors [N], mask [B, ceil(N/32)], k scalar > 0;
// on success stores k (k_tensor must be in host memory).
inline absl::Status ValidateAsymInputs(const char* op, const tensorflow::Tensor& planes,
                                       const tensorflow::Tensor& scales,
                                       const tensorflow::Tensor& item_codes,
                                       const tensorflow::Tensor& factors,
                                       const tensorflow::Tensor& mask,
                                       const tensorflow::Tensor& k_tensor, int64_t* k) {
  namespace errors = ::tensorflow::errors;
  if (planes.dims() != 3) {
    return errors::InvalidArgument(op, ": query_planes must have rank 3 [B, Bq, Wc], got shape ",
                                   planes.shape().DebugString());
  }
  const int64_t batch = planes.dim_size(0), bits = planes.dim_size(1);
  const int64_t words = planes.dim_size(2);
  if (bits < 1 || bits > kAsymMaxQueryBits) {
    return errors::InvalidArgument(op, ": query_planes must hold 1 to ", kAsymMaxQueryBits,
                                   " bit planes (query bits Bq), got Bq=", bits);
  }
  // The shared top-k checks see the planes as [B, Bq * Wc].
  tensorflow::Tensor flat;
  if (!flat.CopyFrom(planes, tensorflow::TensorShape({batch, bits * words}))) {
    return errors::Internal(op, ": cannot view query_planes as a matrix");
  }
  absl::Status status = ValidateMaskedTopKShapes(op, "query_planes", "item_codes", flat,
                                                 item_codes, mask, k_tensor, k);
  if (!status.ok()) return status;
  if (words <= 0) {
    return errors::InvalidArgument(op, ": codes must have at least one 32-bit word, got Wc=",
                                   words);
  }
  if (item_codes.dim_size(1) != words) {
    return errors::InvalidArgument(
        op, ": code width mismatch: query planes have Wc=", words, " words (", 32 * words,
        " bits) but item codes have Wc=", item_codes.dim_size(1), " words (",
        32 * item_codes.dim_size(1), " bits); were they encoded with the same m?");
  }
  if (scales.dims() != 2 || scales.dim_size(0) != batch || scales.dim_size(1) != 2) {
    return errors::InvalidArgument(op, ": query_scales must be [B, 2] = [", batch,
                                   ", 2] (lo, delta per query), got shape ",
                                   scales.shape().DebugString());
  }
  if (factors.dims() != 1 || factors.dim_size(0) != item_codes.dim_size(0)) {
    return errors::InvalidArgument(op, ": item_factors must be [N] = [",
                                   item_codes.dim_size(0), "] (one per item code), got shape ",
                                   factors.shape().DebugString());
  }
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_ASYM_VALIDATE_H_
