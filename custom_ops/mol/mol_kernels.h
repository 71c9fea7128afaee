// LinrMoLTopK: one kernel, MoLTopKOp<Device, T> (mol_kernels.cc: input checks,
// outputs) and its device functors MoLTopKFunctor<Device>: CPUDevice in
// mol_kernels.cc, GPUDevice in mol_kernels_gpu.cu.cc.
#ifndef LINR_CUSTOM_OPS_MOL_MOL_KERNELS_H_
#define LINR_CUSTOM_OPS_MOL_MOL_KERNELS_H_

#include <cstdint>

#include "custom_ops/common/devices.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {

constexpr const char* kMoLTopKOp = "LinrMoLTopK";

// Item storage of the functors.
enum class MoLItemType { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Validated inputs in the op's memory: queries [batch, P, d], items
// [num_items, Q, d] (raw storage of `item_type`), gate_bias [batch, P*Q],
// gate_weight [P*Q, P*Q], mask [batch, ceil(num_items / 32)]; k > 0.
struct MoLTopKArgs {
  const float* queries;
  const void* items;
  const float* gate_bias;
  const float* gate_weight;
  const int32_t* mask;
  MoLItemType item_type;
  int64_t batch, p, q, dim, num_items, num_words, k;
  bool softmax;
};

template <typename Device>
struct MoLTopKFunctor {
  void operator()(tensorflow::OpKernelContext* ctx, const MoLTopKArgs& args,
                  const TopKOutputs& out);
};

#if GOOGLE_CUDA
template <>
struct MoLTopKFunctor<GPUDevice> {
  void operator()(tensorflow::OpKernelContext* ctx, const MoLTopKArgs& args,
                  const TopKOutputs& out);
};
#endif  // GOOGLE_CUDA

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_MOL_MOL_KERNELS_H_
