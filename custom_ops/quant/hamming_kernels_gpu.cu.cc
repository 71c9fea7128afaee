// GPU kernel of LinrHammingTopK (TensorFlow wrapper over hamming_gpu.cu.h).
// Same input checks as the CPU kernel (hamming_validate.h); `k` lives in host
// memory. The launcher synchronises the stream once at the end (candidate-
// buffer overflow check, see hamming_gpu.cu.h). Results are bit-identical to
// the CPU kernel's (integer scores, same order and padding).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <cstdint>

#include "custom_ops/common/gpu_kernel_util.h"
#include "custom_ops/quant/hamming_gpu.cu.h"
#include "custom_ops/quant/hamming_validate.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace linr {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

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
    const int32_t* queries = query_codes.flat<int32_t>().data();
    const int32_t* codes = item_codes.flat<int32_t>().data();
    const int32_t* mask_data = mask.flat<int32_t>().data();
    ComputeGpuTopK(ctx, kOpName, batch, num_items, k, hamming_gpu::kMaxK,
                   hamming_gpu::HammingWorkspaceBytes(batch, num_items, k),
                   [&](void* ws, size_t ws_bytes, const TopKOutputs& out, cudaStream_t stream) {
                     return hamming_gpu::LaunchHammingTopK(
                         queries, codes, mask_data, batch, num_items, words, k, ws, ws_bytes,
                         out.scores, out.idx, out.count, stream);
                   });
  }
};

REGISTER_KERNEL_BUILDER(Name("LinrHammingTopK").Device(::tensorflow::DEVICE_GPU).HostMemory("k"),
                        HammingTopKGpuOp);

}  // namespace
}  // namespace linr

#endif  // GOOGLE_CUDA
