// Host-side helpers of the TensorFlow GPU kernels (*_kernels_gpu.cu.cc, built
// with GOOGLE_CUDA by //custom_ops/cuda): the op's CUDA stream, CUDA errors as
// TF statuses, and the common body of the GPU top-k ops.
#ifndef LINR_CUSTOM_OPS_COMMON_GPU_KERNEL_UTIL_H_
#define LINR_CUSTOM_OPS_COMMON_GPU_KERNEL_UTIL_H_

#ifndef EIGEN_USE_GPU
#define EIGEN_USE_GPU
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "custom_ops/topk/topk_common.h"
#include "custom_ops/topk/topk_outputs.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Stream of the op's GPU device.
inline cudaStream_t GpuStream(tensorflow::OpKernelContext* ctx) {
  return ctx->eigen_device<Eigen::GpuDevice>().stream();
}

// OK, or Internal("<op>: CUDA error <message>").
inline absl::Status CudaStatus(const char* op, cudaError_t err) {
  if (err == cudaSuccess) return absl::OkStatus();
  return tensorflow::errors::Internal(op, ": CUDA error ", cudaGetErrorString(err));
}

// Body of a GPU top-k op once its inputs are validated: rejects
// min(k, N) > max_k (Unimplemented), allocates the outputs (TopKOutputs) and,
// for B > 0, a device workspace of `ws_bytes` bytes, then calls
// launch(workspace, ws_bytes, outputs, stream) -> cudaError_t.
template <typename Launch>
void ComputeGpuTopK(tensorflow::OpKernelContext* ctx, const char* op, int64_t batch,
                    int64_t num_items, int64_t k, int64_t max_k, size_t ws_bytes,
                    Launch&& launch) {
  OP_REQUIRES(ctx, std::min(k, num_items) <= max_k,
              tensorflow::errors::Unimplemented(op, ": the GPU kernel supports min(k, N) <= ",
                                                max_k, ", got ", std::min(k, num_items)));
  TopKOutputs out;
  OP_REQUIRES_OK(ctx, AllocateTopKOutputs(ctx, batch, k, &out));
  if (batch == 0) return;
  tensorflow::Tensor workspace;
  OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_INT8,
                                         tensorflow::TensorShape({static_cast<int64_t>(ws_bytes)}),
                                         &workspace));
  OP_REQUIRES_OK(ctx, CudaStatus(op, launch(static_cast<void*>(workspace.flat<int8_t>().data()),
                                            ws_bytes, out, GpuStream(ctx))));
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_COMMON_GPU_KERNEL_UTIL_H_
