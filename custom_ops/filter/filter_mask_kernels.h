// LinrFilterMask and LinrFilterMaskColumns: one kernel, FilterMaskOp<Device> (filter_mask_kernels.cc:
// input checks, outputs), and its device functors FilterMaskFunctor<Device>:
// CPUDevice in filter_mask_kernels.cc, GPUDevice in
// filter_mask_kernels_gpu.cu.cc.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_MASK_KERNELS_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_MASK_KERNELS_H_

#include <cstdint>

#include "custom_ops/common/devices.h"
#include "custom_ops/filter/filter_columns_resolve.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace linr {

// Validated inputs: item_bits [num_items, num_words] (the op's memory) and
// `program` [batch, length, 2 + num_words] (host memory: every program was
// checked with ValidateProgram); allocated outputs mask [batch,
// ceil(num_items / 32)] and count [batch].
struct FilterMaskArgs {
  const int32_t* item_bits;
  const tensorflow::Tensor* program;
  int64_t num_items, num_words, batch, length;
  int32_t* mask;
  int32_t* count;
  // LinrFilterMaskColumns only (LinrFilterMask: no column leaves): the column
  // stores (the op's memory) and the operands resolved on the host.
  bool has_columns = false;
  const int64_t* numbers = nullptr;
  int64_t num_numbers = 0;
  const int32_t* value_ids = nullptr;
  int64_t value_width = 0;
  const ResolvedColumns* resolved = nullptr;
};

// Fills mask and count; failures are reported on ctx.
template <typename Device>
struct FilterMaskFunctor {
  void operator()(tensorflow::OpKernelContext* ctx, const FilterMaskArgs& args);
};

#if GOOGLE_CUDA
template <>
struct FilterMaskFunctor<GPUDevice> {
  void operator()(tensorflow::OpKernelContext* ctx, const FilterMaskArgs& args);
};
#endif  // GOOGLE_CUDA

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_MASK_KERNELS_H_
