// LinrMaskedTopK / LinrPrefilterTopK: one kernel, TopKOp<Device, T, kStrategy>
// (topk_kernels.cc: input checks, outputs), and its device functors
// TopKFunctor<Device, T, kStrategy>: CPUDevice in topk_kernels.cc, GPUDevice in
// topk_kernels_gpu.cu.cc.
#ifndef LINR_CUSTOM_OPS_TOPK_TOPK_KERNELS_H_
#define LINR_CUSTOM_OPS_TOPK_TOPK_KERNELS_H_

#include <cstdint>

#include "custom_ops/common/devices.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {

// How items are visited (same results): LinrMaskedTopK / LinrPrefilterTopK.
enum class TopKStrategy { kMask, kPrefilter };

constexpr const char* TopKOpName(TopKStrategy strategy) {
  return strategy == TopKStrategy::kMask ? "LinrMaskedTopK" : "LinrPrefilterTopK";
}

// Validated inputs, in the op's memory: queries [batch, dim], items
// [num_items, dim], mask [batch, num_words = ceil(num_items / 32)]; k > 0.
template <typename T>
struct TopKArgs {
  const float* queries;
  const T* items;
  const int32_t* mask;
  int64_t batch, dim, num_items, num_words, k;
  // LinrPrefilterTopK: stream rather than compact where more than this
  // fraction of the items passes some query (1 = always compact).
  float max_union_rate = 1.0f;
};

// Writes the top-k of every query into the allocated outputs `out` (nothing
// for batch 0); failures are reported on ctx.
template <typename Device, typename T, TopKStrategy kStrategy>
struct TopKFunctor {
  void operator()(tensorflow::OpKernelContext* ctx, const TopKArgs<T>& args,
                  const TopKOutputs& out);
};

#if GOOGLE_CUDA
template <typename T, TopKStrategy kStrategy>
struct TopKFunctor<GPUDevice, T, kStrategy> {
  void operator()(tensorflow::OpKernelContext* ctx, const TopKArgs<T>& args,
                  const TopKOutputs& out);
};
#endif  // GOOGLE_CUDA

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_TOPK_TOPK_KERNELS_H_
