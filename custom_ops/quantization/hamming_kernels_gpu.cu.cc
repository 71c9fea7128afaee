// GPU functor of LinrHammingTopK (HammingTopKFunctor<GPUDevice>, over
// hamming_gpu.cu.h); the kernel and its registration are in
// hamming_kernels.cc. `k` lives in host memory. The launcher synchronises the
// stream once at the end (candidate-buffer overflow check, see
// hamming_gpu.cu.h). Results are bit-identical to the CPU functor's (integer
// scores, same order and padding). min(k, N) > 16384 (or
// $LINR_HAMMING_TOPK_SELECT=counting) runs the counting path
// (hamming_large_k_gpu.cu.h, no host synchronisation) instead.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "custom_ops/quantization/hamming_gpu.cu.h"
#include "custom_ops/quantization/hamming_kernels.h"
#include "custom_ops/quantization/hamming_large_k.h"
#include "custom_ops/quantization/hamming_large_k_gpu.cu.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu_kernel.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

void HammingTopKFunctor<GPUDevice>::operator()(tensorflow::OpKernelContext* ctx,
                                               const HammingTopKArgs& a,
                                               const TopKOutputs& out) {
  if (HammingUseCounting(std::min(a.k, a.num_items), kCountingMinKGpu)) {
    // Very large k: counting sort (hamming_large_k_gpu.cu.h), same outputs.
    OP_REQUIRES(ctx, a.words <= kCountingMaxWordsGpu,
                tensorflow::errors::Unimplemented(
                    kHammingTopKOp, ": the GPU counting path (min(k, N) > ", kCountingMinKGpu,
                    ") supports codes of at most ", kCountingMaxWordsGpu, " words (",
                    32 * kCountingMaxWordsGpu, " bits), got Wc=", a.words));
    LaunchGpuTopK(ctx, kHammingTopKOp, a.batch, a.num_items, a.k, kHammingMaxK,
                  hamming_counting_gpu::CountingWorkspaceBytes(a.batch, a.num_items, a.words),
                  [&](void* ws, size_t ws_bytes, cudaStream_t stream) {
                    return hamming_counting_gpu::LaunchHammingTopKCounting(
                        a.query_codes, a.item_codes, a.mask, a.batch, a.num_items, a.words, a.k,
                        ws, ws_bytes, out.scores, out.idx, out.count, stream);
                  });
    return;
  }
  LaunchGpuTopK(ctx, kHammingTopKOp, a.batch, a.num_items, a.k, hamming_gpu::kMaxK,
                hamming_gpu::HammingWorkspaceBytes(a.batch, a.num_items, a.k),
                [&](void* ws, size_t ws_bytes, cudaStream_t stream) {
                  return hamming_gpu::LaunchHammingTopK(
                      a.query_codes, a.item_codes, a.mask, a.batch, a.num_items, a.words, a.k,
                      ws, ws_bytes, out.scores, out.idx, out.count, stream);
                });
}

}  // namespace linr

#endif  // GOOGLE_CUDA
