// LinrAsymmetricHammingTopK: one kernel, AsymHammingTopKOp<Device>
// (asym_kernels.cc: input checks, outputs), and its device functors
// AsymHammingTopKFunctor<Device>: CPUDevice in asym_kernels.cc, GPUDevice in
// asym_kernels_gpu.cu.cc.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_ASYM_KERNELS_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_ASYM_KERNELS_H_

#include <cstdint>

#include "custom_ops/common/devices.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {

constexpr const char* kAsymHammingTopKOp = "LinrAsymmetricHammingTopK";

// Validated inputs, in the op's memory: query_planes [batch, bits, words],
// query_scales [batch, 2] (lo, delta), item_codes [num_items, words],
// item_factors [num_items], mask [batch, num_words = ceil(num_items / 32)];
// 1 <= bits <= 8, k > 0.
struct AsymHammingTopKArgs {
  const int32_t* query_planes;
  const float* query_scales;
  const int32_t* item_codes;
  const float* item_factors;
  const int32_t* mask;
  int64_t batch, bits, words, num_items, num_words, k;
};

template <typename Device>
struct AsymHammingTopKFunctor {
  void operator()(tensorflow::OpKernelContext* ctx, const AsymHammingTopKArgs& args,
                  const TopKOutputs& out);
};

#if GOOGLE_CUDA
template <>
struct AsymHammingTopKFunctor<GPUDevice> {
  void operator()(tensorflow::OpKernelContext* ctx, const AsymHammingTopKArgs& args,
                  const TopKOutputs& out);
};
#endif  // GOOGLE_CUDA

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_ASYM_KERNELS_H_
