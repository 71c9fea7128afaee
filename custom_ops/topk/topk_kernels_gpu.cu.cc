// GPU functors of LinrMaskedTopK / LinrPrefilterTopK (TopKFunctor<GPUDevice,
// T, kStrategy>, over topk_gpu.cu.h); the kernel and its registration are in
// topk_kernels.cc. `k` lives in host memory. The launcher synchronises the
// stream once at the end (candidate-buffer overflow check, see topk_gpu.cu.h).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu_kernel.h"
#include "custom_ops/topk/topk_gpu.cu.h"
#include "custom_ops/topk/topk_kernels.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {
namespace {

template <typename T>
struct CudaType;
template <>
struct CudaType<float> {
  using type = float;
};
template <>
struct CudaType<Eigen::half> {
  using type = __half;
};
template <>
struct CudaType<Eigen::bfloat16> {
  using type = __nv_bfloat16;
};

}  // namespace

template <typename T, TopKStrategy kStrategy>
void TopKFunctor<GPUDevice, T, kStrategy>::operator()(tensorflow::OpKernelContext* ctx,
                                                      const TopKArgs<T>& a,
                                                      const TopKOutputs& out) {
  using CT = typename CudaType<T>::type;
  constexpr bool kPrefilter = kStrategy == TopKStrategy::kPrefilter;
  const CT* item_data = reinterpret_cast<const CT*>(a.items);
  LaunchGpuTopK(ctx, TopKOpName(kStrategy), a.batch, a.num_items, a.k, gpu::kMaxK,
                gpu::TopKWorkspaceBytes(a.batch, a.num_items, a.k, kPrefilter),
                [&](void* ws, size_t ws_bytes, cudaStream_t stream) {
                  return gpu::LaunchTopK<CT>(a.queries, item_data, a.mask, a.batch,
                                             a.num_items, a.dim, a.k, kPrefilter, ws, ws_bytes,
                                             out.scores, out.idx, out.count, stream,
                                             a.max_union_rate);
                });
}

template struct TopKFunctor<GPUDevice, float, TopKStrategy::kMask>;
template struct TopKFunctor<GPUDevice, float, TopKStrategy::kPrefilter>;
template struct TopKFunctor<GPUDevice, Eigen::half, TopKStrategy::kMask>;
template struct TopKFunctor<GPUDevice, Eigen::half, TopKStrategy::kPrefilter>;
template struct TopKFunctor<GPUDevice, Eigen::bfloat16, TopKStrategy::kMask>;
template struct TopKFunctor<GPUDevice, Eigen::bfloat16, TopKStrategy::kPrefilter>;

}  // namespace linr

#endif  // GOOGLE_CUDA
