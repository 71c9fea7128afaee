// Input checks of LinrFilterMask, shared by the CPU and GPU kernels so both
// reject bad input with the same messages. Host only (`program` is read on the
// host: the GPU kernel takes it in host memory).
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_MASK_VALIDATE_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_MASK_VALIDATE_H_

#include <cstdint>

#include "custom_ops/filter/filter_program.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Checks item_bits [N, W] and program [B, L, 2 + W], and every program's
// opcodes and stack discipline (ValidateProgram).
// Column leaves are only valid `with_columns` (LinrFilterMaskColumns).
inline absl::Status ValidateFilterMaskInputs(const tensorflow::Tensor& item_bits,
                                             const tensorflow::Tensor& program,
                                             bool with_columns = false) {
  namespace errors = ::tensorflow::errors;
  if (item_bits.dims() != 2) {
    return errors::InvalidArgument("LinrFilterMask: item_bits must have rank 2, got shape ",
                                   item_bits.shape().DebugString());
  }
  if (program.dims() != 3) {
    return errors::InvalidArgument("LinrFilterMask: program must have rank 3, got shape ",
                                   program.shape().DebugString());
  }
  const int64_t num_words = item_bits.dim_size(1);
  const int64_t row = kProgramHeaderWords + num_words;
  if (program.dim_size(2) != row) {
    return errors::InvalidArgument("LinrFilterMask: bitset words W mismatch: item_bits has W=",
                                   num_words, " but program rows have 2 + W = ",
                                   program.dim_size(2));
  }
  const int64_t length = program.dim_size(1);
  const int32_t* programs = program.flat<int32_t>().data();
  for (int64_t b = 0; b < program.dim_size(0); ++b) {
    const char* problem = ValidateProgram(programs + b * length * row, length, num_words);
    if (problem != nullptr) {
      return errors::InvalidArgument("LinrFilterMask: invalid filter program for query ", b,
                                     ": ", problem);
    }
    for (int64_t i = 0; i < length && !with_columns; ++i) {
      if (IsColumnLeaf(programs[(b * length + i) * row])) {
        return errors::InvalidArgument(
            "LinrFilterMask: the program of query ", b, " has column leaves (exact numbers, "
            "value ids or item ids); evaluate it with LinrFilterMaskColumns");
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_MASK_VALIDATE_H_
