// LinrReadRows / LinrWriteRows: the kernels ReadRowsOp<Device> /
// WriteRowsOp<Device> (rows_kernels.cc: variable lookup, locks, planning) and
// the device functor RowsFunctor<Device> that moves the row data. Only
// RowsFunctor<CPUDevice> exists (rows_kernels.cc), so both ops are registered
// for the CPU only.
#ifndef LINR_CUSTOM_OPS_ROWS_ROWS_KERNELS_H_
#define LINR_CUSTOM_OPS_ROWS_ROWS_KERNELS_H_

#include <cstdint>

#include "custom_ops/common/devices.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace linr {

// Row moves within tensors of one dtype and row shape, in the device's memory.
template <typename Device>
struct RowsFunctor {
  // dst rows [0, rows) = src rows [0, rows).
  static void CopyLeadingRows(tensorflow::OpKernelContext* ctx, const tensorflow::Tensor& src,
                              int64_t rows, tensorflow::Tensor* dst);
  // Rows [from_row, dim 0) of t = zero (POD) / empty (string).
  static void ClearRows(tensorflow::OpKernelContext* ctx, tensorflow::Tensor* t,
                        int64_t from_row);
  // dst row rows[j] = values row j for j < m (rows in host memory, in range).
  static void ScatterRows(tensorflow::OpKernelContext* ctx, const tensorflow::Tensor& values,
                          const int64_t* rows, int64_t m, tensorflow::Tensor* dst);
};

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_ROWS_ROWS_KERNELS_H_
