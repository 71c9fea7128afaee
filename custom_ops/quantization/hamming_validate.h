// Input checks of LinrHammingTopK, shared by the CPU kernel and a future GPU
// kernel so both reject bad input with the same messages. Host only.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_VALIDATE_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_VALIDATE_H_

#include <cstdint>

#include "custom_ops/quantization/hamming_large_k.h"
#include "custom_ops/select/validate.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Checks (query_codes [B, Wc], item_codes [N, Wc], mask [B, ceil(N/32)],
// k scalar > 0, B * k <= kHammingMaxOutputSlots); on success stores k
// (k_tensor must be in host memory).
inline absl::Status ValidateHammingInputs(const char* op, const tensorflow::Tensor& query_codes,
                                          const tensorflow::Tensor& item_codes,
                                          const tensorflow::Tensor& mask,
                                          const tensorflow::Tensor& k_tensor, int64_t* k) {
  absl::Status status = ValidateMaskedTopKShapes(op, "query_codes", "item_codes", query_codes,
                                                 item_codes, mask, k_tensor, k);
  if (!status.ok()) return status;
  const int64_t words = query_codes.dim_size(1);
  if (words <= 0) {
    return tensorflow::errors::InvalidArgument(
        op, ": codes must have at least one 32-bit word, got Wc=", words);
  }
  // Largest k (hamming_large_k.h): k is an int32; B * k output slots.
  const int64_t batch = query_codes.dim_size(0);
  if (batch > 0 && *k > kHammingMaxOutputSlots / batch) {
    return tensorflow::errors::InvalidArgument(
        op, ": k=", *k, " with B=", batch, " queries needs B * k = ", batch * *k,
        " output slots, above the limit of ", kHammingMaxOutputSlots,
        " (2^31 slots, 16 GiB of scores + indices); the largest k for B=", batch, " is ",
        kHammingMaxOutputSlots / batch);
  }
  if (item_codes.dim_size(1) != words) {
    return tensorflow::errors::InvalidArgument(
        op, ": code width mismatch: query codes have Wc=", words, " words (", 32 * words,
        " bits) but item codes have Wc=", item_codes.dim_size(1), " words (",
        32 * item_codes.dim_size(1), " bits); were they encoded with the same m?");
  }
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_VALIDATE_H_
