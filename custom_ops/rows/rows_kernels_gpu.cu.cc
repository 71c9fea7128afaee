// GPU functor of LinrReadRows / LinrWriteRows (RowsFunctor<GPUDevice>); the
// kernels and their registrations are in rows_kernels.cc. Every call enqueues
// on the op's stream (d.stream()) and returns without waiting, except
// Transfer with a host side, which synchronises the stream (the host tensor
// may be pinned and reused once the op returns). Only POD tensors in the
// device's memory come here: string rows are moved on the host by
// RowsFunctor<CPUDevice>.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <algorithm>
#include <cstdint>

#include "custom_ops/common/gpu_kernel_util.h"
#include "custom_ops/rows/rows_kernels.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

namespace {

namespace tf = ::tensorflow;

// dst[rows[j] * per_row + e] = src[j * per_row + e], in units U.
template <typename U>
__global__ void ScatterRowsKernel(const U* __restrict__ src, const int64_t* __restrict__ rows,
                                  int64_t m, int64_t per_row, U* __restrict__ dst) {
  const int64_t total = m * per_row;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = i / per_row;
    const int64_t e = i - j * per_row;
    dst[rows[j] * per_row + e] = src[i];
  }
}

template <typename U>
cudaError_t LaunchScatter(const void* src, const int64_t* rows, int64_t m, int64_t row_bytes,
                          void* dst, cudaStream_t stream) {
  const int64_t per_row = row_bytes / static_cast<int64_t>(sizeof(U));
  const int64_t total = m * per_row;
  constexpr int kThreads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 8192));
  ScatterRowsKernel<U><<<blocks, kThreads, 0, stream>>>(static_cast<const U*>(src), rows, m,
                                                         per_row, static_cast<U*>(dst));
  return cudaGetLastError();
}

int64_t RowBytes(const tf::Tensor& t) {
  return static_cast<int64_t>(t.TotalBytes()) / std::max<int64_t>(1, t.dim_size(0));
}

tf::Status NotPod(const char* what, const tf::Tensor& t) {
  return tf::errors::Internal("LinrRows GPU ", what, ": dtype ", tf::DataTypeString(t.dtype()),
                              " is not in device memory");
}

}  // namespace

template <>
tf::Status RowsFunctor<GPUDevice>::CopyLeadingRows(tf::OpKernelContext* ctx, const tf::Tensor& src,
                                                   int64_t rows, tf::Tensor* dst) {
  if (tf::DataTypeAlwaysOnHost(src.dtype())) return NotPod("CopyLeadingRows", src);
  const size_t bytes = static_cast<size_t>(rows * RowBytes(src));
  if (bytes == 0) return tf::OkStatus();
  const cudaStream_t stream = ctx->eigen_device<GPUDevice>().stream();
  return CudaStatus("LinrRows CopyLeadingRows",
                    cudaMemcpyAsync(const_cast<char*>(dst->tensor_data().data()),
                                    src.tensor_data().data(), bytes, cudaMemcpyDeviceToDevice,
                                    stream));
}

template <>
tf::Status RowsFunctor<GPUDevice>::ClearRows(tf::OpKernelContext* ctx, tf::Tensor* t,
                                             int64_t from_row) {
  if (tf::DataTypeAlwaysOnHost(t->dtype())) return NotPod("ClearRows", *t);
  const int64_t rows = t->dim_size(0);
  if (from_row >= rows) return tf::OkStatus();
  const int64_t row_bytes = RowBytes(*t);
  const size_t bytes = static_cast<size_t>((rows - from_row) * row_bytes);
  if (bytes == 0) return tf::OkStatus();
  const cudaStream_t stream = ctx->eigen_device<GPUDevice>().stream();
  // All-zero bytes are the zero of every POD dtype (float 0.0, int 0).
  return CudaStatus("LinrRows ClearRows",
                    cudaMemsetAsync(const_cast<char*>(t->tensor_data().data()) + from_row * row_bytes,
                                    0, bytes, stream));
}

template <>
tf::Status RowsFunctor<GPUDevice>::ScatterRows(tf::OpKernelContext* ctx, const tf::Tensor& values,
                                               const int64_t* rows, int64_t m, tf::Tensor* dst) {
  if (tf::DataTypeAlwaysOnHost(dst->dtype())) return NotPod("ScatterRows", *dst);
  if (m == 0) return tf::OkStatus();
  const int64_t row_bytes = static_cast<int64_t>(values.TotalBytes()) / m;
  if (row_bytes == 0) return tf::OkStatus();
  const cudaStream_t stream = ctx->eigen_device<GPUDevice>().stream();
  const void* src = values.tensor_data().data();
  void* out = const_cast<char*>(dst->tensor_data().data());
  // Widest unit dividing the row (buffers are >= 16-byte aligned, so every
  // row start is aligned to it).
  cudaError_t err;
  if (row_bytes % 16 == 0) {
    err = LaunchScatter<uint4>(src, rows, m, row_bytes, out, stream);
  } else if (row_bytes % 8 == 0) {
    err = LaunchScatter<uint2>(src, rows, m, row_bytes, out, stream);
  } else if (row_bytes % 4 == 0) {
    err = LaunchScatter<uint32_t>(src, rows, m, row_bytes, out, stream);
  } else if (row_bytes % 2 == 0) {
    err = LaunchScatter<uint16_t>(src, rows, m, row_bytes, out, stream);
  } else {
    err = LaunchScatter<uint8_t>(src, rows, m, row_bytes, out, stream);
  }
  return CudaStatus("LinrRows ScatterRows", err);
}

template <>
tf::Status RowsFunctor<GPUDevice>::Transfer(tf::OpKernelContext* ctx, const tf::Tensor& src,
                                            bool src_on_host, tf::Tensor* dst, bool dst_on_host) {
  if (tf::DataTypeAlwaysOnHost(src.dtype())) return NotPod("Transfer", src);
  const size_t bytes = src.TotalBytes();
  if (bytes == 0) return tf::OkStatus();
  const cudaMemcpyKind kind = src_on_host ? (dst_on_host ? cudaMemcpyHostToHost
                                                         : cudaMemcpyHostToDevice)
                                          : (dst_on_host ? cudaMemcpyDeviceToHost
                                                         : cudaMemcpyDeviceToDevice);
  const cudaStream_t stream = ctx->eigen_device<GPUDevice>().stream();
  cudaError_t err = cudaMemcpyAsync(const_cast<char*>(dst->tensor_data().data()),
                                    src.tensor_data().data(), bytes, kind, stream);
  if (err == cudaSuccess && (src_on_host || dst_on_host)) err = cudaStreamSynchronize(stream);
  return CudaStatus("LinrRows Transfer", err);
}

}  // namespace linr

#endif  // GOOGLE_CUDA
