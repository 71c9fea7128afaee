// GPU kernel of LinrHammingTopK (TensorFlow wrapper over hamming_gpu.cu.h).
// Same input checks as the CPU kernel (hamming_validate.h); `k` lives in host
// memory. The launcher synchronises the stream once at the end (candidate-
// buffer overflow check, see hamming_gpu.cu.h). Results are bit-identical to
// the CPU kernel's (integer scores, same order and padding).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <algorithm>
#include <cstdint>

#include "custom_ops/quant/hamming_gpu.cu.h"
#include "custom_ops/quant/hamming_validate.h"
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

constexpr const char* kOpName = "LinrHammingTopK";

class HammingTopKGpuOp : public OpKernel {
 public:
  explicit HammingTopKGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& query_codes = ctx->input(0);
    const Tensor& item_codes = ctx->input(1);
    const Tensor& mask = ctx->input(2);
    int64_t k = 0;
    OP_REQUIRES_OK(ctx, ValidateHammingInputs(kOpName, query_codes, item_codes, mask,
                                              ctx->input(3), &k));
    const int64_t batch = query_codes.dim_size(0);
    const int64_t words = query_codes.dim_size(1);
    const int64_t num_items = item_codes.dim_size(0);
    OP_REQUIRES(ctx, std::min(k, num_items) <= hamming_gpu::kMaxK,
                errors::Unimplemented(kOpName, ": the GPU kernel supports min(k, N) <= ",
                                      hamming_gpu::kMaxK, ", got ", std::min(k, num_items)));
    Tensor* scores = nullptr;
    Tensor* indices = nullptr;
    Tensor* count = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, k}), &scores));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, k}), &indices));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch}), &count));
    if (batch == 0) return;
    const size_t ws_bytes = hamming_gpu::HammingWorkspaceBytes(batch, num_items, k);
    Tensor workspace;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_INT8,
                                           TensorShape({static_cast<int64_t>(ws_bytes)}),
                                           &workspace));
    const cudaStream_t stream = ctx->eigen_device<GPUDevice>().stream();
    const cudaError_t err = hamming_gpu::LaunchHammingTopK(
        query_codes.flat<int32_t>().data(), item_codes.flat<int32_t>().data(),
        mask.flat<int32_t>().data(), batch, num_items, words, k,
        workspace.flat<int8_t>().data(), ws_bytes, scores->flat<float>().data(),
        indices->flat<int32_t>().data(), count->flat<int32_t>().data(), stream);
    OP_REQUIRES(ctx, err == cudaSuccess,
                errors::Internal(kOpName, ": CUDA error ", cudaGetErrorString(err)));
  }
};

REGISTER_KERNEL_BUILDER(Name("LinrHammingTopK").Device(::tensorflow::DEVICE_GPU).HostMemory("k"),
                        HammingTopKGpuOp);

}  // namespace
}  // namespace linr

#endif  // GOOGLE_CUDA
