// GPU functor of LinrFilterMask (FilterMaskFunctor<GPUDevice>, over
// filter_mask_gpu.cu.h); the kernel and its registration are in
// filter_mask_kernels.cc. `program` is registered in host memory: every
// program is validated on the host (ValidateProgram, error names the query),
// then copied to the device.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "custom_ops/common/gpu_kernel_util.h"
#include "custom_ops/filter/filter_mask_gpu.cu.h"
#include "custom_ops/filter/filter_mask_kernels.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

void FilterMaskFunctor<GPUDevice>::operator()(tensorflow::OpKernelContext* ctx,
                                              const FilterMaskArgs& a) {
  OP_REQUIRES(ctx, a.num_words >= 1 && (a.has_columns || a.num_words <= 320),
              tensorflow::errors::InvalidArgument(
                  "LinrFilterMask: GPU kernel needs 1 <= W <= 320, got ", a.num_words));
  if (a.batch == 0) return;
  const tensorflow::Tensor& program = *a.program;
  tensorflow::Tensor dev_prog;
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
  if (a.has_columns) {
    // Resolved operands and the pool (host) go to the device as well.
    const ResolvedColumns& r = *a.resolved;
    tensorflow::Tensor dev_records, dev_pool;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_INT64,
                                           {static_cast<int64_t>(r.records.size()) + 1},
                                           &dev_records));
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_INT32,
                                           {static_cast<int64_t>(r.pool.size())}, &dev_pool));
    if (err == cudaSuccess && !r.records.empty()) {
      err = cudaMemcpyAsync(dev_records.flat<int64_t>().data(), r.records.data(),
                            sizeof(int64_t) * r.records.size(), cudaMemcpyHostToDevice, stream);
    }
    if (err == cudaSuccess) {
      err = cudaMemcpyAsync(dev_pool.flat<int32_t>().data(), r.pool.data(),
                            sizeof(int32_t) * r.pool.size(), cudaMemcpyHostToDevice, stream);
    }
    // The host vectors die with the op: wait for the copies.
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
    if (err == cudaSuccess) {
      err = gpu::LaunchFilterMaskColumns(
          a.item_bits, a.num_items, a.num_words, dev_prog.flat<int32_t>().data(), a.length,
          a.batch, a.numbers, a.num_numbers, a.value_ids, a.value_width,
          dev_records.flat<int64_t>().data(), r.num_records, dev_pool.flat<int32_t>().data(),
          a.mask, a.count, stream);
    }
    OP_REQUIRES_OK(ctx, CudaStatus("LinrFilterMaskColumns", err));
    return;
  }
  if (err == cudaSuccess) {
    err = gpu::LaunchFilterMask(a.item_bits, a.num_items, a.num_words,
                                dev_prog.flat<int32_t>().data(), a.length, a.batch, a.mask,
                                a.count, stream);
  }
  OP_REQUIRES_OK(ctx, CudaStatus("LinrFilterMask", err));
}

}  // namespace linr

#endif  // GOOGLE_CUDA
