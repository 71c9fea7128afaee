// GPU kernel of LinrFilterMask (TensorFlow wrapper over filter_mask_gpu.cu.h).
// `program` is registered in host memory: every program is validated on the
// host (ValidateProgram, error names the query), then copied to the device.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "custom_ops/common/gpu_kernel_util.h"
#include "custom_ops/filter/filter_mask_gpu.cu.h"
#include "custom_ops/filter/filter_mask_validate.h"
#include "custom_ops/filter/filter_program.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace linr {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

class LinrFilterMaskGpuOp : public OpKernel {
 public:
  explicit LinrFilterMaskGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& item_bits = ctx->input(0);
    const Tensor& program = ctx->input(1);
    OP_REQUIRES_OK(ctx, ValidateFilterMaskInputs(item_bits, program));
    const int64_t num_items = item_bits.dim_size(0);
    const int64_t num_words = item_bits.dim_size(1);
    const int64_t batch = program.dim_size(0);
    const int64_t length = program.dim_size(1);
    OP_REQUIRES(ctx, num_words >= 1 && num_words <= 320,
                errors::InvalidArgument("LinrFilterMask: GPU kernel needs 1 <= W <= 320, got ",
                                        num_words));
    const int64_t mask_words = (num_items + 31) / 32;
    Tensor* mask = nullptr;
    Tensor* count = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, mask_words}), &mask));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch}), &count));
    if (batch == 0) return;
    Tensor dev_prog;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_INT32, program.shape(), &dev_prog));
    const cudaStream_t stream = GpuStream(ctx);
    const int32_t* host_prog = program.flat<int32_t>().data();
    const size_t bytes = sizeof(int32_t) * static_cast<size_t>(program.NumElements());
    cudaError_t err = cudaSuccess;
    if (bytes > 0) {
      err = cudaMemcpyAsync(dev_prog.flat<int32_t>().data(), host_prog, bytes,
                            cudaMemcpyHostToDevice, stream);
      // The host tensor may be pinned; keep it alive until the copy is done.
      if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
    }
    if (err == cudaSuccess) {
      err = gpu::LaunchFilterMask(item_bits.flat<int32_t>().data(), num_items, num_words,
                                  dev_prog.flat<int32_t>().data(), length, batch,
                                  mask->flat<int32_t>().data(), count->flat<int32_t>().data(),
                                  stream);
    }
    OP_REQUIRES_OK(ctx, CudaStatus("LinrFilterMask", err));
  }
};

REGISTER_KERNEL_BUILDER(Name("LinrFilterMask")
                            .Device(::tensorflow::DEVICE_GPU)
                            .HostMemory("program"),
                        LinrFilterMaskGpuOp);

}  // namespace
}  // namespace linr

#endif  // GOOGLE_CUDA
