// Input checks of LinrHammingTopK, shared by the CPU kernel and a future GPU
// kernel so both reject bad input with the same messages. Host only.
#ifndef LINR_CUSTOM_OPS_QUANT_HAMMING_VALIDATE_H_
#define LINR_CUSTOM_OPS_QUANT_HAMMING_VALIDATE_H_

#include <cstdint>
#include <limits>

#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Checks (query_codes [B, Wc], item_codes [N, Wc], mask [B, ceil(N/32)],
// k scalar > 0); on success stores k (k_tensor must be in host memory).
inline absl::Status ValidateHammingInputs(const char* op, const tensorflow::Tensor& query_codes,
                                          const tensorflow::Tensor& item_codes,
                                          const tensorflow::Tensor& mask,
                                          const tensorflow::Tensor& k_tensor, int64_t* k) {
  namespace errors = ::tensorflow::errors;
  auto rank_error = [op](const char* name, int rank, const tensorflow::Tensor& t) {
    return errors::InvalidArgument(op, ": ", name, " must have rank ", rank, ", got shape ",
                                   t.shape().DebugString());
  };
  if (query_codes.dims() != 2) return rank_error("query_codes", 2, query_codes);
  if (item_codes.dims() != 2) return rank_error("item_codes", 2, item_codes);
  if (mask.dims() != 2) return rank_error("mask", 2, mask);
  if (!tensorflow::TensorShapeUtils::IsScalar(k_tensor.shape())) {
    return rank_error("k", 0, k_tensor);
  }
  const int64_t batch = query_codes.dim_size(0);
  const int64_t words = query_codes.dim_size(1);
  const int64_t num_items = item_codes.dim_size(0);
  *k = k_tensor.scalar<int32_t>()();
  if (*k <= 0) return errors::InvalidArgument(op, ": k must be positive, got ", *k);
  if (words <= 0) {
    return errors::InvalidArgument(op, ": codes must have at least one 32-bit word, got Wc=",
                                   words);
  }
  if (item_codes.dim_size(1) != words) {
    return errors::InvalidArgument(
        op, ": code width mismatch: query codes have Wc=", words, " words (", 32 * words,
        " bits) but item codes have Wc=", item_codes.dim_size(1), " words (",
        32 * item_codes.dim_size(1), " bits); were they encoded with the same m?");
  }
  if (mask.dim_size(0) != batch) {
    return errors::InvalidArgument(op, ": batch size B mismatch: query_codes ", batch,
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

#endif  // LINR_CUSTOM_OPS_QUANT_HAMMING_VALIDATE_H_
