// GPU kernels of LinrMaskedTopK / LinrPrefilterTopK (TensorFlow wrappers over
// topk_gpu.cu.h). `k` lives in host memory. The launcher synchronises the
// stream once at the end (candidate-buffer overflow check, see topk_gpu.cu.h).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "custom_ops/topk/topk_gpu.cu.h"
#include "custom_ops/topk/topk_validate.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"

namespace linr {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;
using GPUDevice = Eigen::GpuDevice;

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
    const Tensor& k_t = ctx->input(3);
    int64_t k = 0;
    OP_REQUIRES_OK(ctx, ValidateTopKInputs(op, queries, items, mask, k_t, &k));
    const int64_t batch = queries.dim_size(0), dim = queries.dim_size(1);
    const int64_t num_items = items.dim_size(0);
    OP_REQUIRES(ctx, std::min(k, num_items) <= gpu::kMaxK,
                errors::Unimplemented(op, ": the GPU kernel supports min(k, N) <= ",
                                      gpu::kMaxK, ", got ", std::min(k, num_items)));
    Tensor* scores = nullptr;
    Tensor* indices = nullptr;
    Tensor* count = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, k}), &scores));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, k}), &indices));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch}), &count));
    if (batch == 0) return;
    const size_t ws_bytes = gpu::TopKWorkspaceBytes(batch, num_items, k, kPrefilter);
    Tensor workspace;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_INT8,
                                           TensorShape({static_cast<int64_t>(ws_bytes)}),
                                           &workspace));
    using CT = typename CudaType<T>::type;
    const cudaStream_t stream = ctx->eigen_device<GPUDevice>().stream();
    const cudaError_t err = gpu::LaunchTopK<CT>(
        queries.flat<float>().data(), reinterpret_cast<const CT*>(items.flat<T>().data()),
        mask.flat<int32_t>().data(), batch, num_items, dim, k, kPrefilter,
        workspace.flat<int8_t>().data(), ws_bytes, scores->flat<float>().data(),
        indices->flat<int32_t>().data(), count->flat<int32_t>().data(), stream);
    OP_REQUIRES(ctx, err == cudaSuccess,
                errors::Internal(op, ": CUDA error ", cudaGetErrorString(err)));
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
