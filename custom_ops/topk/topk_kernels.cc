// CPU kernels of LinrMaskedTopK and LinrPrefilterTopK.
//
// Both ops take a per-query pass mask [B, M] (bit i % 32 of word i / 32 set
// <=> item i may be returned) and return the same results; they differ in how
// items are visited:
//   LinrMaskedTopK    streams the items in index order, 32 at a time (one mask
//                     word); groups of 4 items that no query of the task lets
//                     pass are skipped, all others are scored and the
//                     non-passing pairs dropped.
//   LinrPrefilterTopK first compacts the ids passing at least one query of the
//                     task (the union, with ctz over the mask words) together
//                     with per-query pass bitstreams (parallel bit extract),
//                     then gathers and scores only those rows; a chunk of
//                     words where more than `max_union_rate` of the items
//                     pass is streamed as by LinrMaskedTopK instead.
// Work is split into tasks of (item range x block of queries) on TF's intra-op
// thread pool; each task scores groups of 4 items against blocks of 4 queries
// with the tile kernels of topk_cpu.h (AVX2 or portable, bit-identical) and
// keeps a CandidateBuffer (select/candidate_buffer.h) per query. Per-task
// results are merged per query with the full (score desc, index asc) order
// (select/merge.h).
//
// The one kernel of both ops, TopKOp<Device, T, kStrategy>, checks the inputs,
// allocates the outputs and runs TopKFunctor<Device, T, kStrategy>: the CPU
// functor here, the GPU one in topk_kernels_gpu.cu.cc (GOOGLE_CUDA builds).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "custom_ops/common/devices.h"
#include "custom_ops/select/allocate_outputs.h"
#include "custom_ops/select/candidate_buffer.h"
#include "custom_ops/select/merge.h"
#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/topk/topk_cpu.h"
#include "custom_ops/topk/topk_kernels.h"
#include "custom_ops/topk/topk_validate.h"
#include "tensorflow/core/framework/bfloat16.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/threadpool.h"

namespace linr {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShapeUtils;
namespace errors = ::tensorflow::errors;

namespace {

#if LINR_X86_SIMD
template <typename T>
struct StorageOf {
  using type = T;
};
template <>
struct StorageOf<Eigen::half> {
  using type = cpu::HalfBits;
};
template <>
struct StorageOf<::tensorflow::bfloat16> {
  using type = cpu::Bf16Bits;
};
#endif

// Runs the group kernel of the selected instruction set.
template <typename T>
inline void ScoreGroup(cpu::Isa isa, const cpu::GroupArgs<T>& a) {
#if LINR_X86_SIMD
  if (isa != cpu::Isa::kPortable) {
    using S = typename StorageOf<T>::type;
    const S* rows[cpu::kItemGroup];
    for (int i = 0; i < cpu::kItemGroup; ++i) rows[i] = reinterpret_cast<const S*>(a.rows[i]);
    if (isa == cpu::Isa::kAvx512) {
      cpu::ScoreGroupAvx512<S>(a.queries, a.num_blocks, a.dim, a.dim_padded, rows, a.pass,
                               a.threshold, a.admit, a.scores);
    } else {
      cpu::ScoreGroupAvx2<S>(a.queries, a.num_blocks, a.dim, a.dim_padded, rows, a.pass,
                             a.threshold, a.admit, a.scores);
    }
    return;
  }
#endif
  cpu::ScoreGroupPortable<T>(a);
}

inline uint32_t Pext(cpu::Isa isa, uint32_t value, uint32_t mask) {
#if LINR_X86_SIMD
  if (isa != cpu::Isa::kPortable) return cpu::PextAvx2(value, mask);
#endif
  return cpu::PextPortable(value, mask);
}

// Bits of mask word w that name items < num_items (bits past N are ignored).
inline uint32_t ValidBits(int64_t w, int64_t num_items) {
  const int64_t left = num_items - w * 32;
  return left >= 32 ? 0xFFFFFFFFu : ((1u << left) - 1u);
}

// Population count without relying on -mpopcnt (SWAR).
inline int Popcount(uint32_t x) {
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0F0F0F0Fu;
  return static_cast<int>((x * 0x01010101u) >> 24);
}

inline void PrefetchRow(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 2);
}

// Reusable per-thread working memory of RunTask.
struct Scratch {
  std::vector<CandidateBuffer<float>> buffers;
  std::vector<float> threshold;
  std::vector<uint16_t> pass, admit;
  std::vector<float> tile_scores;
  std::vector<uint32_t> unions;
  std::vector<int64_t> offsets;
  std::vector<int32_t> compact;
  std::vector<uint64_t> streams;
  std::vector<int32_t> nonzero;
};

inline Scratch& ThreadScratch() {
  static thread_local Scratch scratch;
  return scratch;
}

}  // namespace

template <typename T, TopKStrategy kStrategy>
struct TopKFunctor<CPUDevice, T, kStrategy> {
  void operator()(OpKernelContext* ctx, const TopKArgs<T>& a, const TopKOutputs& out) {
    if (a.batch == 0) return;
    const int64_t batch = a.batch, dim = a.dim, num_items = a.num_items;
    const int64_t num_words = a.num_words, k = a.k;
    const cpu::Isa isa = cpu::SelectIsa();
    const int64_t dim_padded = cpu::PaddedDim(dim);
    const int64_t num_blocks = (batch + cpu::kQueryBlock - 1) / cpu::kQueryBlock;
    // Queries zero-padded to [4 * num_blocks, dim_padded].
    std::vector<float> queries_padded(num_blocks * cpu::kQueryBlock * dim_padded, 0.f);
    const float* query_data = a.queries;
    for (int64_t b = 0; b < batch; ++b) {
      std::copy(query_data + b * dim, query_data + (b + 1) * dim,
                queries_padded.data() + b * dim_padded);
    }
    // The AVX-512 kernels read the queries of a block as interleaved pairs.
    if (isa == cpu::Isa::kAvx512) {
      cpu::InterleaveQueryPairs(queries_padded.data(), num_blocks, dim_padded);
    }
    const T* item_data = a.items;
    const uint32_t* mask_data = reinterpret_cast<const uint32_t*>(a.mask);

    // Plan: item shards (whole mask words) x groups of query blocks.
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int64_t threads = std::max(1, pool->NumThreads());
    // Several queries: one item shard per thread (each shard keeps its own
    // candidate buffers, so more shards mean more pushes and compactions);
    // one query block: more, smaller tasks for load balance.
    const int64_t target_tasks = (num_blocks > 1 ? 1 : 4) * threads;
    constexpr int64_t kMinWordsPerShard = 64;
    const int64_t item_shards =
        std::max<int64_t>(1, std::min(target_tasks, num_words / kMinWordsPerShard));
    const int64_t block_groups = std::max<int64_t>(
        1, std::min(num_blocks, (target_tasks + item_shards - 1) / item_shards));
    const int64_t words_per_shard = (num_words + item_shards - 1) / item_shards;
    const int64_t blocks_per_group = (num_blocks + block_groups - 1) / block_groups;

    std::vector<std::vector<ScoredItem>> partial(item_shards * batch);
    auto run_task = [&](int64_t task) {
      const int64_t shard = task / block_groups;
      const int64_t group = task % block_groups;
      const int64_t w_begin = std::min(num_words, shard * words_per_shard);
      const int64_t w_end = std::min(num_words, w_begin + words_per_shard);
      const int64_t blk_begin = std::min(num_blocks, group * blocks_per_group);
      const int64_t blk_end = std::min(num_blocks, blk_begin + blocks_per_group);
      if (w_begin >= w_end || blk_begin >= blk_end) return;
      RunTask(isa, queries_padded.data(), item_data, mask_data, batch, dim, dim_padded,
              num_items, num_words, k, w_begin, w_end, blk_begin, blk_end,
              a.max_union_rate, partial.data() + shard * batch);
    };
    const int64_t num_tasks = item_shards * block_groups;
    const int64_t task_cost = std::max<int64_t>(
        1, words_per_shard * 32 * blocks_per_group * 4 * std::max<int64_t>(dim, 1));
    pool->ParallelFor(num_tasks, task_cost, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) run_task(task);
    });

    MergeShards(pool, partial, item_shards, batch, k, out);
  }

 private:
  // Scores items of mask words [w_begin, w_end) for query blocks
  // [blk_begin, blk_end); writes the best <= k per query to out[q]. Prefilter:
  // a chunk where more than max_union_rate of the items pass is streamed.
  static void RunTask(cpu::Isa isa, const float* queries_padded, const T* item_data,
                      const uint32_t* mask_data, int64_t batch, int64_t dim, int64_t dim_padded,
                      int64_t num_items, int64_t num_words, int64_t k, int64_t w_begin,
                      int64_t w_end, int64_t blk_begin, int64_t blk_end, float max_union_rate,
                      std::vector<ScoredItem>* out) {
    const int64_t nb = blk_end - blk_begin;
    const int64_t q_begin = blk_begin * cpu::kQueryBlock;
    const int64_t q_end = std::min(batch, blk_end * cpu::kQueryBlock);
    const int64_t nq = q_end - q_begin;  // real queries of the task
    // Per-thread scratch, reused across calls (avoids page faults of fresh
    // allocations on every request).
    Scratch& sc = ThreadScratch();
    if (static_cast<int64_t>(sc.buffers.size()) < nq) sc.buffers.resize(nq);
    auto& buffers = sc.buffers;
    for (int64_t q = 0; q < nq; ++q) buffers[q].Reset(k, (w_end - w_begin) * 32);
    auto& threshold = sc.threshold;
    threshold.assign(nb * cpu::kQueryBlock, __builtin_nanf(""));
    auto& pass = sc.pass;
    auto& admit = sc.admit;
    pass.assign(nb, 0);
    admit.assign(nb, 0);
    auto& tile_scores = sc.tile_scores;
    tile_scores.resize(16 * nb);
    std::vector<const uint32_t*> rows_mask(nq);
    for (int64_t q = 0; q < nq; ++q) rows_mask[q] = mask_data + (q_begin + q) * num_words;
    // Items are visited in units of up to 32 (one mask word, or 32 compacted
    // ids) with per-query pass words unit_bits[q]; each unit is scored per
    // superblock of kSuperBlocks query blocks so that its rows and the
    // superblock's queries stay in L1.
    constexpr int64_t kSuperBlocks = 4;
    std::vector<uint32_t> unit_bits(nq);
    int32_t unit_ids[32];
    const T* unit_rows[32];
    const bool single = nq == 1;

    const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(T));
    bool stream_prefetch = false;  // units are runs of contiguous rows
    cpu::GroupArgs<T> args;
    args.dim = dim;
    args.dim_padded = dim_padded;

    // Scores the unit (n ids, union bits `any`) and feeds the buffers.
    auto score_unit = [&](int n, uint32_t any) {
      for (int i = n; i < 32; ++i) {
        unit_ids[i] = unit_ids[0];
        unit_rows[i] = unit_rows[0];
      }
      for (int64_t sb = 0; sb < nb; sb += kSuperBlocks) {
        const int64_t sb_end = std::min(nb, sb + kSuperBlocks);
        for (int g = 0; g < 32 / cpu::kItemGroup; ++g) {
          if (((any >> (4 * g)) & 0xFu) == 0) continue;
          const int32_t* ids = unit_ids + 4 * g;
          uint32_t all_pass = 0;
          for (int64_t blk = sb; blk < sb_end; ++blk) {
            uint32_t p = 0;
            const int64_t q0 = blk * cpu::kQueryBlock;
            for (int q = 0; q < cpu::kQueryBlock && q0 + q < nq; ++q) {
              p |= cpu::SpreadNibble((unit_bits[q0 + q] >> (4 * g)) & 0xFu, q);
            }
            pass[blk] = static_cast<uint16_t>(p);
            all_pass |= p;
          }
          if (all_pass == 0) continue;
#if LINR_X86_SIMD
          // Streamed rows are contiguous: prefetch the group 16 items ahead
          // (the tile kernels read 4 rows at once, which the hardware
          // prefetcher alone follows at about half the read bandwidth).
          if (stream_prefetch) PrefetchRow(unit_rows[4 * g] + 16 * dim, 4 * row_bytes);
          if (single && isa != cpu::Isa::kPortable) {
            using S = typename StorageOf<T>::type;
            const S* rows[cpu::kItemGroup];
            for (int i = 0; i < cpu::kItemGroup; ++i) {
              rows[i] = reinterpret_cast<const S*>(unit_rows[4 * g + i]);
            }
            if (isa == cpu::Isa::kAvx512) {
              cpu::ScoreGroupAvx512Single<S>(queries_padded + q_begin * dim_padded, dim, rows,
                                             pass[0], threshold[0], admit.data(),
                                             tile_scores.data());
            } else {
              cpu::ScoreGroupAvx2Single<S>(queries_padded + q_begin * dim_padded, dim, rows,
                                           pass[0], threshold[0], admit.data(),
                                           tile_scores.data());
            }
          } else
#endif
          {
            args.queries = queries_padded + (q_begin + sb * cpu::kQueryBlock) * dim_padded;
            args.num_blocks = sb_end - sb;
            for (int i = 0; i < cpu::kItemGroup; ++i) args.rows[i] = unit_rows[4 * g + i];
            args.pass = pass.data() + sb;
            args.threshold = threshold.data() + sb * cpu::kQueryBlock;
            args.admit = admit.data() + sb;
            args.scores = tile_scores.data() + 16 * sb;
            ScoreGroup<T>(isa, args);
          }
          for (int64_t blk = sb; blk < sb_end; ++blk) {
            uint32_t bits = admit[blk];
            while (bits != 0) {
              const int bit = __builtin_ctz(bits);
              bits &= bits - 1;
              const int64_t ql = blk * cpu::kQueryBlock + ((bit >> 1) & 3);
              const int i = (bit >> 3) * 2 + (bit & 1);
              buffers[ql].Push(tile_scores[16 * blk + bit], ids[i]);
              threshold[ql] = buffers[ql].Threshold();
            }
          }
        }
      }
    };

    // The shard's mask words are processed in chunks small enough that the
    // chunk's rows of all queries stay in L2 between the passes over them.
    const int64_t chunk_words =
        std::max<int64_t>(16, std::min<int64_t>(512, (64 * 1024) / std::max<int64_t>(nq, 1)));
    auto& unions = sc.unions;
    auto& offsets = sc.offsets;
    auto& compact = sc.compact;
    auto& streams = sc.streams;
    for (int64_t c_begin = w_begin; c_begin < w_end; c_begin += chunk_words) {
      const int64_t c_end = std::min(w_end, c_begin + chunk_words);
      const int64_t cw = c_end - c_begin;
      // Union of the task's queries per word (row by row: sequential reads).
      unions.assign(cw, 0u);
      for (int64_t q = 0; q < nq; ++q) {
        const uint32_t* row = rows_mask[q] + c_begin;
        uint32_t* u = unions.data();
        for (int64_t w = 0; w < cw; ++w) u[w] |= row[w];
      }
      if (c_end == num_words) unions[cw - 1] &= ValidBits(c_end - 1, num_items);

      // Prefilter: positions of each word's ids in the compacted list.
      int64_t total = 0;
      if (kStrategy == TopKStrategy::kPrefilter) {
        offsets.resize(cw);
        for (int64_t w = 0; w < cw; ++w) {
          offsets[w] = total;
          total += Popcount(unions[w]);
        }
      }
      const int64_t chunk_items = std::min(num_items, c_end * 32) - c_begin * 32;
      if (kStrategy == TopKStrategy::kMask ||
          static_cast<double>(total) > max_union_rate * static_cast<double>(chunk_items)) {
        for (int64_t w = c_begin; w < c_end; ++w) {
          const uint32_t any = unions[w - c_begin];
          if (any == 0) continue;
          for (int64_t q = 0; q < nq; ++q) unit_bits[q] = rows_mask[q][w] & any;
          const int n = static_cast<int>(std::min<int64_t>(32, num_items - w * 32));
          for (int i = 0; i < n; ++i) {
            unit_ids[i] = static_cast<int32_t>(w * 32 + i);
            unit_rows[i] = item_data + (w * 32 + i) * dim;
          }
          stream_prefetch = true;
          score_unit(n, any);
          stream_prefetch = false;
        }
        continue;
      }
      if (total == 0) continue;
      // Compact ids, then per-query pass bitstreams aligned with them.
      compact.resize(total);
      auto& nonzero = sc.nonzero;  // words of the chunk some query passes
      nonzero.clear();
      for (int64_t w = 0; w < cw; ++w) {
        uint32_t rest = unions[w];
        if (rest != 0) nonzero.push_back(static_cast<int32_t>(w));
        int32_t* out = compact.data() + offsets[w];
        while (rest != 0) {
          *out++ = static_cast<int32_t>((c_begin + w) * 32 + __builtin_ctz(rest));
          rest &= rest - 1;
        }
      }
      const int64_t stream_words = (total + 63) / 64 + 1;
      streams.assign(nq * stream_words, 0);
      for (int64_t q = 0; q < nq; ++q) {
        const uint32_t* row = rows_mask[q] + c_begin;
        uint64_t* stream = streams.data() + q * stream_words;
        // Only the words of the union (few at low pass rates: B x all words
        // would dominate the call at B = 64, 0.1 %).
        for (const int32_t w : nonzero) {
          const uint32_t any = unions[w];
          const uint32_t m = row[w] & any;
          if (m == 0) continue;
          const int count = Popcount(any);
          const uint64_t bits = m == any ? (count == 32 ? 0xFFFFFFFFull : ((1ull << count) - 1))
                                         : Pext(isa, m, any);
          const int64_t pos = offsets[w];
          uint64_t* st = stream + (pos >> 6);
          const int shift = static_cast<int>(pos & 63);
          st[0] |= bits << shift;
          if (shift + count > 64) st[1] |= bits >> (64 - shift);
        }
      }
      // Gather and score units of 32 compacted ids.
      for (int64_t a = 0; a < std::min<int64_t>(total, 64); ++a) {
        PrefetchRow(item_data + static_cast<int64_t>(compact[a]) * dim, row_bytes);
      }
      for (int64_t p = 0; p < total; p += 32) {
        const int n = static_cast<int>(std::min<int64_t>(32, total - p));
        // Rows two units ahead go to L2 (random rows defeat the hardware
        // prefetcher).
        const int64_t ahead = p + 64;
        for (int64_t a = ahead; a < std::min(total, ahead + 32); ++a) {
          PrefetchRow(item_data + static_cast<int64_t>(compact[a]) * dim, row_bytes);
        }
        uint32_t any = 0;
        for (int64_t q = 0; q < nq; ++q) {
          any |= (unit_bits[q] = static_cast<uint32_t>(
                      streams[q * stream_words + (p >> 6)] >> (p & 63)));
        }
        for (int i = 0; i < n; ++i) {
          unit_ids[i] = compact[p + i];
          unit_rows[i] = item_data + static_cast<int64_t>(compact[p + i]) * dim;
        }
        score_unit(n, any);
      }
    }
    for (int64_t q = 0; q < nq; ++q) {
      const auto& best = buffers[q].Finish();
      out[q_begin + q].assign(best.begin(), best.end());
    }
  }
};

namespace {

template <typename Device, typename T, TopKStrategy kStrategy>
class TopKOp : public OpKernel {
 public:
  explicit TopKOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    if (kStrategy == TopKStrategy::kPrefilter) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("max_union_rate", &max_union_rate_));
      OP_REQUIRES(ctx, max_union_rate_ >= 0.0f,
                  errors::InvalidArgument(TopKOpName(kStrategy), ": max_union_rate must be >= 0, got ",
                                          max_union_rate_));
    }
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& queries = ctx->input(0);
    const Tensor& items = ctx->input(1);
    const Tensor& mask = ctx->input(2);
    int64_t k = 0;
    OP_REQUIRES_OK(ctx, ValidateTopKInputs(TopKOpName(kStrategy), queries, items, mask,
                                           ctx->input(3), &k));
    const TopKArgs<T> args{queries.flat<float>().data(),
                           items.flat<T>().data(),
                           mask.flat<int32_t>().data(),
                           /*batch=*/queries.dim_size(0),
                           /*dim=*/queries.dim_size(1),
                           /*num_items=*/items.dim_size(0),
                           /*num_words=*/mask.dim_size(1),
                           k, max_union_rate_};
    TopKOutputs out;
    OP_REQUIRES_OK(ctx, AllocateTopKOutputs(ctx, args.batch, k, &out));
    TopKFunctor<Device, T, kStrategy>()(ctx, args, out);
  }

 private:
  float max_union_rate_ = 1.0f;
};

#define LINR_REGISTER_TOPK(DEVICE, DEVICE_NAME, T, ...)                                    \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("LinrMaskedTopK").Device(DEVICE_NAME) __VA_ARGS__.TypeConstraint<T>("T"),       \
      TopKOp<DEVICE, T, TopKStrategy::kMask>);                                             \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("LinrPrefilterTopK").Device(DEVICE_NAME) __VA_ARGS__.TypeConstraint<T>("T"),    \
      TopKOp<DEVICE, T, TopKStrategy::kPrefilter>)

#define LINR_REGISTER_TOPK_CPU(T) LINR_REGISTER_TOPK(CPUDevice, ::tensorflow::DEVICE_CPU, T, )
LINR_REGISTER_TOPK_CPU(float);
LINR_REGISTER_TOPK_CPU(Eigen::half);
LINR_REGISTER_TOPK_CPU(::tensorflow::bfloat16);
#undef LINR_REGISTER_TOPK_CPU

}  // namespace

#if GOOGLE_CUDA
// GPU functors are defined and instantiated in topk_kernels_gpu.cu.cc.
#define LINR_REGISTER_TOPK_GPU(T)                                                \
  extern template struct TopKFunctor<GPUDevice, T, TopKStrategy::kMask>;         \
  extern template struct TopKFunctor<GPUDevice, T, TopKStrategy::kPrefilter>;    \
  LINR_REGISTER_TOPK(GPUDevice, ::tensorflow::DEVICE_GPU, T, .HostMemory("k"))
LINR_REGISTER_TOPK_GPU(float);
LINR_REGISTER_TOPK_GPU(Eigen::half);
LINR_REGISTER_TOPK_GPU(::tensorflow::bfloat16);
#undef LINR_REGISTER_TOPK_GPU
#endif  // GOOGLE_CUDA

#undef LINR_REGISTER_TOPK

}  // namespace linr
