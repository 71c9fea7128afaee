// LinrReadRows / LinrWriteRows: the kernels ReadRowsOp<Device> /
// WriteRowsOp<Device> (rows_kernels.cc: variable lookup, locks, planning) and
// the device functor RowsFunctor<Device> that moves the row data:
// RowsFunctor<CPUDevice> in rows_kernels.cc, RowsFunctor<GPUDevice> in
// rows_kernels_gpu.cu.cc (GOOGLE_CUDA builds register both ops for the GPU).
//
// Memory: on the GPU, tensors of a dtype that TensorFlow always keeps on the
// host (tf.string: DataTypeAlwaysOnHost) are host tensors, moved by
// RowsFunctor<CPUDevice> even in the GPU kernels; every other variable buffer
// is device memory of the op's GPU (int32 included: AssignVariableOp keeps an
// int32 GPU variable in device memory). RowsFunctor<GPUDevice> only ever sees
// device-memory tensors, except for Transfer.
#ifndef LINR_CUSTOM_OPS_ROWS_ROWS_KERNELS_H_
#define LINR_CUSTOM_OPS_ROWS_ROWS_KERNELS_H_

#include <cstdint>

#include "custom_ops/common/devices.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace linr {

// Row moves within tensors of one dtype and row shape, in the device's memory.
// The GPU functor enqueues its work on the op's stream and returns without
// waiting (stream order makes later kernels of the device see the rows).
template <typename Device>
struct RowsFunctor {
  // dst rows [0, rows) = src rows [0, rows).
  static absl::Status CopyLeadingRows(tensorflow::OpKernelContext* ctx,
                                      const tensorflow::Tensor& src, int64_t rows,
                                      tensorflow::Tensor* dst);
  // Rows [from_row, dim 0) of t = zero (POD) / empty (string).
  static absl::Status ClearRows(tensorflow::OpKernelContext* ctx, tensorflow::Tensor* t,
                                int64_t from_row);
  // dst row rows[j] = values row j for j < m (rows in the device's memory, in
  // range, distinct).
  static absl::Status ScatterRows(tensorflow::OpKernelContext* ctx,
                                  const tensorflow::Tensor& values, const int64_t* rows,
                                  int64_t m, tensorflow::Tensor* dst);
  // dst = src (same dtype and shape, POD), src / dst in host memory where
  // *_on_host, else in the device's memory. Returns once the host side may be
  // reused or read (the GPU functor synchronises the stream when either side
  // is on the host).
  static absl::Status Transfer(tensorflow::OpKernelContext* ctx, const tensorflow::Tensor& src,
                               bool src_on_host, tensorflow::Tensor* dst, bool dst_on_host);
};

#if GOOGLE_CUDA
// Defined in rows_kernels_gpu.cu.cc.
template <>
absl::Status RowsFunctor<GPUDevice>::CopyLeadingRows(tensorflow::OpKernelContext* ctx,
                                                     const tensorflow::Tensor& src, int64_t rows,
                                                     tensorflow::Tensor* dst);
template <>
absl::Status RowsFunctor<GPUDevice>::ClearRows(tensorflow::OpKernelContext* ctx,
                                               tensorflow::Tensor* t, int64_t from_row);
template <>
absl::Status RowsFunctor<GPUDevice>::ScatterRows(tensorflow::OpKernelContext* ctx,
                                                 const tensorflow::Tensor& values,
                                                 const int64_t* rows, int64_t m,
                                                 tensorflow::Tensor* dst);
template <>
absl::Status RowsFunctor<GPUDevice>::Transfer(tensorflow::OpKernelContext* ctx,
                                              const tensorflow::Tensor& src, bool src_on_host,
                                              tensorflow::Tensor* dst, bool dst_on_host);
#endif  // GOOGLE_CUDA

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_ROWS_ROWS_KERNELS_H_
