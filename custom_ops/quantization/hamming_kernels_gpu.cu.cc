// GPU functor of LinrHammingTopK (HammingTopKFunctor<GPUDevice>, over
// hamming_gpu.cu.h); the kernel and its registration are in
// hamming_kernels.cc. `k` lives in host memory. The launcher synchronises the
// stream once at the end (candidate-buffer overflow check, see
// hamming_gpu.cu.h). Results are bit-identical to the CPU functor's (integer
// scores, same order and padding).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "custom_ops/quantization/hamming_gpu.cu.h"
#include "custom_ops/quantization/hamming_kernels.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu_kernel.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {

void HammingTopKFunctor<GPUDevice>::operator()(tensorflow::OpKernelContext* ctx,
                                               const HammingTopKArgs& a,
                                               const TopKOutputs& out) {
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
