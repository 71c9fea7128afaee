// CPU kernel of LinrHammingTopK.
//
// Items are split into shards of whole tiles of mask words, one task per
// shard on TF's intra-op thread pool (2 per thread for B > 1, 4 for B = 1).
// A task runs hamming_cpu::ScanRange (hamming_cpu_scan.h): tiles of ~16 KiB
// of codes are scored against every query before the next tile is read;
// per (query block, tile) the densest path applies: 8 queries per item pass
// (AVX2), all items of one query (POPCNT distances + SIMD threshold test) or
// only the passing items. Per-query buffers admit an item only when its
// score beats the buffer's k-th best (items arrive in ascending index, so an
// equal score always loses the tie). Per-shard results are merged per query
// with the full (score desc, index asc) order.
//
// Instruction sets (hamming_cpu_simd.h): avx2 > popcnt > portable, chosen at
// run time; $LINR_CPU_ISA=portable forces the portable reference. All paths
// give identical results.
//
// Very large k (min(k, N) > 4096, or $LINR_HAMMING_TOPK_SELECT=counting):
// the counting-sort path of hamming_large_k_cpu.h instead of candidate
// buffers; identical outputs (hamming_large_k.h).
//
// The kernel, HammingTopKOp<Device>, checks the inputs, allocates the outputs
// and runs HammingTopKFunctor<Device>: the CPU functor here, the GPU one in
// hamming_kernels_gpu.cu.cc (GOOGLE_CUDA builds).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "custom_ops/common/devices.h"
#include "custom_ops/quantization/hamming_common.h"
#include "custom_ops/quantization/hamming_cpu_scan.h"
#include "custom_ops/quantization/hamming_cpu_simd.h"
#include "custom_ops/quantization/hamming_kernels.h"
#include "custom_ops/quantization/hamming_large_k.h"
#include "custom_ops/quantization/hamming_large_k_cpu.h"
#include "custom_ops/quantization/hamming_validate.h"
#include "custom_ops/select/allocate_outputs.h"
#include "custom_ops/select/candidate_buffer.h"
#include "custom_ops/select/merge.h"
#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/threadpool.h"

namespace linr {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

template <>
struct HammingTopKFunctor<CPUDevice> {
  void operator()(OpKernelContext* ctx, const HammingTopKArgs& a, const TopKOutputs& out) {
    if (a.batch == 0) return;
    const int64_t batch = a.batch, words = a.words, num_items = a.num_items;
    const int64_t num_words = a.num_words, k = a.k;
    const hamming_cpu::Kernels kern = hamming_cpu::SelectKernels(words);
    const uint32_t* queries = reinterpret_cast<const uint32_t*>(a.query_codes);
    const uint32_t* codes = reinterpret_cast<const uint32_t*>(a.item_codes);
    const uint32_t* mask_data = reinterpret_cast<const uint32_t*>(a.mask);
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    if (HammingUseCounting(std::min(k, num_items), kCountingMinKCpu)) {
      // Very large k: counting sort (hamming_large_k_cpu.h), same outputs.
      const hamming_cpu::CountingArgs args{queries, codes, mask_data, batch,
                                           words,   num_items, num_words, k};
      hamming_cpu::CountingTopK(kern, args, out, pool->NumThreads(),
                                [pool](int64_t n, int64_t cost, auto&& fn) {
                                  pool->ParallelFor(n, cost, fn);
                                });
      return;
    }

    // Tiles of mask words whose codes (32 * words * 4 bytes per word) fill
    // about 16 KiB of L1; shards are whole tiles.
    const int64_t tile_words = std::max<int64_t>(1, (16 * 1024) / (128 * words));
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
      std::vector<CandidateBuffer<int>> buffers(batch);
      for (auto& b : buffers) b.Reset(k, (w_end - w_begin) * 32);
      hamming_cpu::ScanRange(kern, queries, codes, mask_data, batch, words, num_items,
                             num_words, w_begin, w_end, tile_words, buffers.data());
      for (int64_t q = 0; q < batch; ++q) {
        partial[shard * batch + q] = std::move(buffers[q].Finish());
      }
    };
    const int64_t shard_cost = std::max<int64_t>(1, words_per_shard * 32 * batch * words * 4);
    pool->ParallelFor(shards, shard_cost, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) run_shard(s);
    });

    MergeShards(pool, partial, shards, batch, k, out);
  }
};

namespace {

template <typename Device>
class HammingTopKOp : public OpKernel {
 public:
  explicit HammingTopKOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& query_codes = ctx->input(0);
    const Tensor& item_codes = ctx->input(1);
    const Tensor& mask = ctx->input(2);
    int64_t k = 0;
    OP_REQUIRES_OK(ctx, ValidateHammingInputs(kHammingTopKOp, query_codes, item_codes, mask,
                                              ctx->input(3), &k));
    const HammingTopKArgs args{query_codes.flat<int32_t>().data(),
                               item_codes.flat<int32_t>().data(),
                               mask.flat<int32_t>().data(),
                               /*batch=*/query_codes.dim_size(0),
                               /*words=*/query_codes.dim_size(1),
                               /*num_items=*/item_codes.dim_size(0),
                               /*num_words=*/mask.dim_size(1),
                               k};
    TopKOutputs out;
    OP_REQUIRES_OK(ctx, AllocateTopKOutputs(ctx, args.batch, k, &out));
    HammingTopKFunctor<Device>()(ctx, args, out);
  }
};

REGISTER_KERNEL_BUILDER(Name("LinrHammingTopK").Device(::tensorflow::DEVICE_CPU),
                        HammingTopKOp<CPUDevice>);

}  // namespace

#if GOOGLE_CUDA
// HammingTopKFunctor<GPUDevice> is defined in hamming_kernels_gpu.cu.cc.
REGISTER_KERNEL_BUILDER(Name("LinrHammingTopK").Device(::tensorflow::DEVICE_GPU).HostMemory("k"),
                        HammingTopKOp<GPUDevice>);
#endif  // GOOGLE_CUDA

}  // namespace linr
