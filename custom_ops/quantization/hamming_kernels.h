// LinrHammingTopK: one kernel, HammingTopKOp<Device> (hamming_kernels.cc:
// input checks, outputs), and its device functors HammingTopKFunctor<Device>:
// CPUDevice in hamming_kernels.cc, GPUDevice in hamming_kernels_gpu.cu.cc.
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_KERNELS_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_KERNELS_H_

#include <cstdint>

#include "custom_ops/common/devices.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {

constexpr const char* kHammingTopKOp = "LinrHammingTopK";

// Validated inputs, in the op's memory: query_codes [batch, words], item_codes
// [num_items, words], mask [batch, num_words = ceil(num_items / 32)]; k > 0.
struct HammingTopKArgs {
  const int32_t* query_codes;
  const int32_t* item_codes;
  const int32_t* mask;
  int64_t batch, words, num_items, num_words, k;
};

// Writes the top-k of every query into the allocated outputs `out` (nothing
// for batch 0); failures are reported on ctx.
template <typename Device>
struct HammingTopKFunctor {
  void operator()(tensorflow::OpKernelContext* ctx, const HammingTopKArgs& args,
                  const TopKOutputs& out);
};

#if GOOGLE_CUDA
template <>
struct HammingTopKFunctor<GPUDevice> {
  void operator()(tensorflow::OpKernelContext* ctx, const HammingTopKArgs& args,
                  const TopKOutputs& out);
};
#endif  // GOOGLE_CUDA

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_KERNELS_H_
