// GPU kernels of LinrMaskedTopK / LinrPrefilterTopK (TensorFlow wrappers over
// topk_gpu.cu.h). `k` lives in host memory. The launcher synchronises the
// stream once at the end (candidate-buffer overflow check, see topk_gpu.cu.h).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "custom_ops/common/gpu_kernel_util.h"
#include "custom_ops/topk/topk_gpu.cu.h"
#include "custom_ops/topk/topk_validate.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace linr {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

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

template <typename T, bool kPrefilter>
class TopKGpuOp : public OpKernel {
 public:
  explicit TopKGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const char* op = kPrefilter ? "LinrPrefilterTopK" : "LinrMaskedTopK";
    const Tensor& queries = ctx->input(0);
    const Tensor& items = ctx->input(1);
    const Tensor& mask = ctx->input(2);
    int64_t k = 0;
    OP_REQUIRES_OK(ctx, ValidateTopKInputs(op, queries, items, mask, ctx->input(3), &k));
    const int64_t batch = queries.dim_size(0), dim = queries.dim_size(1);
    const int64_t num_items = items.dim_size(0);
    using CT = typename CudaType<T>::type;
    const float* query_data = queries.flat<float>().data();
    const CT* item_data = reinterpret_cast<const CT*>(items.flat<T>().data());
    const int32_t* mask_data = mask.flat<int32_t>().data();
    ComputeGpuTopK(ctx, op, batch, num_items, k, gpu::kMaxK,
                   gpu::TopKWorkspaceBytes(batch, num_items, k, kPrefilter),
                   [&](void* ws, size_t ws_bytes, const TopKOutputs& out, cudaStream_t stream) {
                     return gpu::LaunchTopK<CT>(query_data, item_data, mask_data, batch,
                                                num_items, dim, k, kPrefilter, ws, ws_bytes,
                                                out.scores, out.idx, out.count, stream);
                   });
  }
};

#define LINR_REGISTER_TOPK_GPU(T)                                                    \
  REGISTER_KERNEL_BUILDER(Name("LinrMaskedTopK")                                     \
                              .Device(::tensorflow::DEVICE_GPU)                      \
                              .HostMemory("k")                                       \
                              .TypeConstraint<T>("T"),                               \
                          TopKGpuOp<T, false>);                                      \
  REGISTER_KERNEL_BUILDER(Name("LinrPrefilterTopK")                                  \
                              .Device(::tensorflow::DEVICE_GPU)                      \
                              .HostMemory("k")                                       \
                              .TypeConstraint<T>("T"),                               \
                          TopKGpuOp<T, true>)

LINR_REGISTER_TOPK_GPU(float);
LINR_REGISTER_TOPK_GPU(Eigen::half);
LINR_REGISTER_TOPK_GPU(Eigen::bfloat16);
#undef LINR_REGISTER_TOPK_GPU

}  // namespace
}  // namespace linr

#endif  // GOOGLE_CUDA
