// Host side of the GPU top-k functors (TensorFlow, built with GOOGLE_CUDA by
// //custom_ops/cuda): the launch of a top-k over a device workspace.
#ifndef LINR_CUSTOM_OPS_SELECT_SELECT_GPU_KERNEL_H_
#define LINR_CUSTOM_OPS_SELECT_SELECT_GPU_KERNEL_H_

#ifndef EIGEN_USE_GPU
#define EIGEN_USE_GPU
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "custom_ops/common/gpu_kernel_util.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Rejects min(k, N) > max_k (Unimplemented, also for B = 0); for B > 0
// allocates a device workspace of `ws_bytes` bytes and calls
// launch(workspace, ws_bytes, stream) -> cudaError_t, which fills the outputs
// (allocated by the caller).
template <typename Launch>
void LaunchGpuTopK(tensorflow::OpKernelContext* ctx, const char* op, int64_t batch,
                   int64_t num_items, int64_t k, int64_t max_k, size_t ws_bytes,
                   Launch&& launch) {
  OP_REQUIRES(ctx, std::min(k, num_items) <= max_k,
              tensorflow::errors::Unimplemented(op, ": the GPU kernel supports min(k, N) <= ",
                                                max_k, ", got ", std::min(k, num_items)));
  if (batch == 0) return;
  tensorflow::Tensor workspace;
  OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_INT8,
                                         tensorflow::TensorShape({static_cast<int64_t>(ws_bytes)}),
                                         &workspace));
  OP_REQUIRES_OK(ctx, CudaStatus(op, launch(static_cast<void*>(workspace.flat<int8_t>().data()),
                                            ws_bytes, GpuStream(ctx))));
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_SELECT_GPU_KERNEL_H_
