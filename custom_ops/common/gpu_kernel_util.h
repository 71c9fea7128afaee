// Host-side helpers of the TensorFlow GPU kernels (*_kernels_gpu.cu.cc, built
// with GOOGLE_CUDA by //custom_ops/cuda): the op's CUDA stream and CUDA errors
// as TF statuses.
#ifndef LINR_CUSTOM_OPS_COMMON_GPU_KERNEL_UTIL_H_
#define LINR_CUSTOM_OPS_COMMON_GPU_KERNEL_UTIL_H_

#ifndef EIGEN_USE_GPU
#define EIGEN_USE_GPU
#endif

#include <cuda_runtime.h>

#include "tensorflow/core/framework/op_kernel.h"
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

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_COMMON_GPU_KERNEL_UTIL_H_
