// GPU functor of LinrAsymmetricHammingTopK (AsymHammingTopKFunctor<GPUDevice>,
// over asym_gpu.cu.h); the kernel and its registration are in
// asym_kernels.cc. `k` lives in host memory. Results are bit-identical to the
// CPU functor's (same integer parts and float rounding steps, same order and
// padding).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "custom_ops/quantization/asym_gpu.cu.h"
#include "custom_ops/quantization/asym_kernels.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu_kernel.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {

void AsymHammingTopKFunctor<GPUDevice>::operator()(tensorflow::OpKernelContext* ctx,
                                                   const AsymHammingTopKArgs& a,
                                                   const TopKOutputs& out) {
  OP_REQUIRES(ctx, a.words <= asym_gpu::kMaxWords,
              tensorflow::errors::InvalidArgument(
                  kAsymHammingTopKOp, ": the GPU kernel supports codes of up to ",
                  32 * asym_gpu::kMaxWords, " bits, got ", 32 * a.words));
  LaunchGpuTopK(ctx, kAsymHammingTopKOp, a.batch, a.num_items, a.k, asym_gpu::kMaxK,
                asym_gpu::AsymWorkspaceBytes(a.batch, a.num_items, a.k),
                [&](void* ws, size_t ws_bytes, cudaStream_t stream) {
                  return asym_gpu::LaunchAsymHammingTopK(
                      a.query_planes, a.query_scales, a.item_codes, a.item_factors, a.mask,
                      a.batch, a.num_items, a.bits, a.words, a.k, ws, ws_bytes, out.scores,
                      out.idx, out.count, stream);
                });
}

}  // namespace linr

#endif  // GOOGLE_CUDA
