// Output allocation of every top-k op (CPU and GPU kernels), in the op's
// memory. Host only.
#ifndef LINR_CUSTOM_OPS_SELECT_ALLOCATE_OUTPUTS_H_
#define LINR_CUSTOM_OPS_SELECT_ALLOCATE_OUTPUTS_H_

#include <cstdint>

#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Allocates outputs 0..2 (scores [B, k], indices [B, k], count [B]) and stores
// their data pointers in `out`.
inline absl::Status AllocateTopKOutputs(tensorflow::OpKernelContext* ctx, int64_t batch,
                                        int64_t k, TopKOutputs* out) {
  using ::tensorflow::TensorShape;
  tensorflow::Tensor* scores = nullptr;
  tensorflow::Tensor* indices = nullptr;
  tensorflow::Tensor* count = nullptr;
  TF_RETURN_IF_ERROR(ctx->allocate_output(0, TensorShape({batch, k}), &scores));
  TF_RETURN_IF_ERROR(ctx->allocate_output(1, TensorShape({batch, k}), &indices));
  TF_RETURN_IF_ERROR(ctx->allocate_output(2, TensorShape({batch}), &count));
  out->scores = scores->flat<float>().data();
  out->idx = indices->flat<int32_t>().data();
  out->count = count->flat<int32_t>().data();
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_ALLOCATE_OUTPUTS_H_
