// GPU functor of LinrMoLTopK (MoLTopKFunctor<GPUDevice>, over mol_gpu.cu.h);
// the kernel and its registration are in mol_kernels.cc. `k` lives in host
// memory. Compiled here; not yet run on a GPU (tests/gpu/mol_gpu_test.py).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "custom_ops/mol/mol_gpu.cu.h"
#include "custom_ops/mol/mol_kernels.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu_kernel.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace linr {

void MoLTopKFunctor<GPUDevice>::operator()(tensorflow::OpKernelContext* ctx,
                                           const MoLTopKArgs& a, const TopKOutputs& out) {
  OP_REQUIRES(ctx, mol_gpu::TileSharedBytes(a.q, a.dim) <= mol_gpu::kMaxSharedBytes,
              tensorflow::errors::Unimplemented(kMoLTopKOp, ": the GPU kernel needs Q*d <= ",
                                                mol_gpu::kMaxSharedBytes / 128 - 1, ", got ",
                                                a.q * a.dim));
  LaunchGpuTopK(ctx, kMoLTopKOp, a.batch, a.num_items, a.k, mol_gpu::kMaxK,
                mol_gpu::MoLWorkspaceBytes(a.batch, a.num_items, a.k),
                [&](void* ws, size_t ws_bytes, cudaStream_t stream) {
                  return mol_gpu::LaunchMoLTopK(
                      a.queries, a.items, a.gate_bias, a.gate_weight, a.mask,
                      static_cast<int>(a.item_type), a.batch, a.p, a.q, a.dim, a.num_items, a.k,
                      a.softmax, ws, ws_bytes, out, stream);
                });
}

}  // namespace linr

#endif  // GOOGLE_CUDA
