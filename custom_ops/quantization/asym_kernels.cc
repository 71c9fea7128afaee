// CPU kernel of LinrAsymmetricHammingTopK (RaBitQ-like asymmetric 1-bit
// scores, asym_common.h).
//
// Items are split into shards of whole tiles of mask words, one task per
// shard on TF's intra-op thread pool (2 per thread for B > 1, 4 for B = 1),
// as in LinrHammingTopK. A task runs asym_cpu::ScanRange (asym_cpu_scan.h):
// tiles of ~16 KiB of codes are scored against every query before the next
// tile is read (densely when a quarter of the tile passes, else only the
// passing items) into per-query running top-k buffers;
// per-shard results are merged per query with the full (score desc, index
// asc) order (select/merge.h).
//
// Instruction sets (asym_cpu_simd.h): avx512 (VPOPCNTDQ) > popcnt > portable,
// chosen at run time; $LINR_CPU_ISA=portable forces the portable reference.
// All paths give identical results.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "custom_ops/common/devices.h"
#include "custom_ops/quantization/asym_common.h"
#include "custom_ops/quantization/asym_cpu_scan.h"
#include "custom_ops/quantization/asym_cpu_simd.h"
#include "custom_ops/quantization/asym_kernels.h"
#include "custom_ops/quantization/asym_validate.h"
#include "custom_ops/select/allocate_outputs.h"
#include "custom_ops/select/candidate_buffer.h"
#include "custom_ops/select/merge.h"
#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/threadpool.h"

namespace linr {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

template <>
struct AsymHammingTopKFunctor<CPUDevice> {
  void operator()(OpKernelContext* ctx, const AsymHammingTopKArgs& a, const TopKOutputs& out) {
    if (a.batch == 0) return;
    const int64_t batch = a.batch, words = a.words, num_words = a.num_words, k = a.k;
    const asym_cpu::Kernels kern = asym_cpu::SelectKernels(words, static_cast<int>(a.bits));
    const uint32_t* planes = reinterpret_cast<const uint32_t*>(a.query_planes);
    const uint32_t* codes = reinterpret_cast<const uint32_t*>(a.item_codes);
    const uint32_t* mask = reinterpret_cast<const uint32_t*>(a.mask);
    std::vector<asym_cpu::Query> queries(batch);
    for (int64_t q = 0; q < batch; ++q) {
      const uint32_t* qp = planes + q * a.bits * words;
      queries[q] = {qp, static_cast<int>(a.bits), a.query_scales[2 * q],
                    a.query_scales[2 * q + 1],
                    asym_cpu::PlaneTotal(qp, static_cast<int>(a.bits), words)};
    }

    const int64_t tile_words = std::max<int64_t>(1, (16 * 1024) / (128 * words));
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int64_t threads = std::max(1, pool->NumThreads());
    const int64_t num_tiles = (num_words + tile_words - 1) / tile_words;
    const int64_t target = (batch > 1 ? 2 : 4) * threads;
    const int64_t shards = std::max<int64_t>(1, std::min(target, num_tiles / 2));
    const int64_t words_per_shard = (num_tiles + shards - 1) / shards * tile_words;

    std::vector<std::vector<ScoredItem>> partial(shards * batch);
    auto run_shard = [&](int64_t shard) {
      const int64_t w_begin = std::min(num_words, shard * words_per_shard);
      const int64_t w_end = std::min(num_words, w_begin + words_per_shard);
      if (w_begin >= w_end) return;
      std::vector<CandidateBuffer<float>> buffers(batch);
      for (auto& b : buffers) b.Reset(k, (w_end - w_begin) * 32);
      asym_cpu::ScanRange(kern, queries.data(), codes, a.item_factors, mask, batch, words,
                          a.num_items, num_words, w_begin, w_end, tile_words, buffers.data());
      for (int64_t q = 0; q < batch; ++q) {
        partial[shard * batch + q] = std::move(buffers[q].Finish());
      }
    };
    const int64_t shard_cost =
        std::max<int64_t>(1, words_per_shard * 32 * batch * words * (a.bits + 1) * 4);
    pool->ParallelFor(shards, shard_cost, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) run_shard(s);
    });

    MergeShards(pool, partial, shards, batch, k, out);
  }
};

namespace {

template <typename Device>
class AsymHammingTopKOp : public OpKernel {
 public:
  explicit AsymHammingTopKOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& planes = ctx->input(0);
    const Tensor& scales = ctx->input(1);
    const Tensor& item_codes = ctx->input(2);
    const Tensor& factors = ctx->input(3);
    const Tensor& mask = ctx->input(4);
    int64_t k = 0;
    OP_REQUIRES_OK(ctx, ValidateAsymInputs(kAsymHammingTopKOp, planes, scales, item_codes,
                                           factors, mask, ctx->input(5), &k));
    const AsymHammingTopKArgs args{planes.flat<int32_t>().data(),
                                   scales.flat<float>().data(),
                                   item_codes.flat<int32_t>().data(),
                                   factors.flat<float>().data(),
                                   mask.flat<int32_t>().data(),
                                   /*batch=*/planes.dim_size(0),
                                   /*bits=*/planes.dim_size(1),
                                   /*words=*/planes.dim_size(2),
                                   /*num_items=*/item_codes.dim_size(0),
                                   /*num_words=*/mask.dim_size(1),
                                   k};
    TopKOutputs out;
    OP_REQUIRES_OK(ctx, AllocateTopKOutputs(ctx, args.batch, k, &out));
    AsymHammingTopKFunctor<Device>()(ctx, args, out);
  }
};

REGISTER_KERNEL_BUILDER(Name("LinrAsymmetricHammingTopK").Device(::tensorflow::DEVICE_CPU),
                        AsymHammingTopKOp<CPUDevice>);

}  // namespace

#if GOOGLE_CUDA
// AsymHammingTopKFunctor<GPUDevice> is defined in asym_kernels_gpu.cu.cc.
REGISTER_KERNEL_BUILDER(Name("LinrAsymmetricHammingTopK")
                            .Device(::tensorflow::DEVICE_GPU)
                            .HostMemory("k"),
                        AsymHammingTopKOp<GPUDevice>);
#endif  // GOOGLE_CUDA

}  // namespace linr
