// CPU kernel of LinrMaskedTopK.
//
// Work is split into tasks of (item range x query range) run on TF's intra-op
// thread pool. Each task scans its items in ascending index order and keeps,
// per query, a candidate buffer of up to 2k entries with an admission
// threshold: once the buffer has been compacted to the best k (nth_element),
// a new item must score strictly above the k-th best to enter. Because items
// arrive in ascending index, an equal score always loses the tie, so the
// strict test is exact. Per-task results (<= k per query) are merged per query
// with the full (score desc, index asc) order.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "custom_ops/filter/filter_eval.h"
#include "custom_ops/topk/topk_common.h"
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
using ::tensorflow::TensorShape;
using ::tensorflow::TensorShapeUtils;
namespace errors = ::tensorflow::errors;

namespace {

// Keeps the best `k` of a stream of candidates arriving in ascending index.
class CandidateBuffer {
 public:
  void Reset(int64_t k, int64_t max_arrivals) {
    k_ = k;
    capacity_ = 2 * k;
    full_ = false;
    threshold_ = 0.f;
    items_.clear();
    items_.reserve(static_cast<size_t>(std::min<int64_t>(capacity_, max_arrivals)));
  }

  // Cheap pre-test so the caller can skip work for hopeless candidates.
  bool Admits(float score) const { return !full_ || score > threshold_; }

  void Push(float score, int32_t index) {
    items_.push_back(ScoredItem{score, index});
    if (static_cast<int64_t>(items_.size()) >= capacity_) Compact();
  }

  // Reduces the buffer to (at most) its best k entries, unordered.
  std::vector<ScoredItem>& Finish() {
    if (static_cast<int64_t>(items_.size()) > k_) Compact();
    return items_;
  }

 private:
  void Compact() {
    auto by_rank = [](const ScoredItem& a, const ScoredItem& b) { return RanksBefore(a, b); };
    std::nth_element(items_.begin(), items_.begin() + (k_ - 1), items_.end(), by_rank);
    items_.resize(k_);
    threshold_ = items_[k_ - 1].score;  // the k-th best: worst kept entry
    full_ = true;
  }

  int64_t k_ = 0;
  int64_t capacity_ = 0;
  bool full_ = false;
  float threshold_ = 0.f;
  std::vector<ScoredItem> items_;
};

// Float32 dot product compiled for several ISAs and picked at load time (GCC
// function multiversioning), so the library stays portable but uses AVX2 /
// AVX-512 where present. Same summation order on every ISA (no FP contraction
// under -std=c++17), hence the same results.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float DotF32(const float* query, const float* item, int64_t dim) {
  return DotProduct<float>(query, item, dim);
}

template <typename T>
inline float Score(const float* query, const T* item, int64_t dim) {
  return DotProduct<T>(query, item, dim);
}

template <>
inline float Score<float>(const float* query, const float* item, int64_t dim) {
  return DotF32(query, item, dim);
}

}  // namespace

template <typename T>
class LinrMaskedTopKOp : public OpKernel {
 public:
  explicit LinrMaskedTopKOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& queries = ctx->input(0);
    const Tensor& items = ctx->input(1);
    const Tensor& item_bits = ctx->input(2);
    const Tensor& clauses = ctx->input(3);
    const Tensor& num_clauses = ctx->input(4);
    const Tensor& k_tensor = ctx->input(5);

    auto rank_error = [](const char* name, int rank, const Tensor& t) {
      return errors::InvalidArgument("LinrMaskedTopK: ", name, " must have rank ", rank,
                                     ", got shape ", t.shape().DebugString());
    };
    OP_REQUIRES(ctx, queries.dims() == 2, rank_error("queries", 2, queries));
    OP_REQUIRES(ctx, items.dims() == 2, rank_error("items", 2, items));
    OP_REQUIRES(ctx, item_bits.dims() == 2, rank_error("item_bits", 2, item_bits));
    OP_REQUIRES(ctx, clauses.dims() == 3, rank_error("clauses", 3, clauses));
    OP_REQUIRES(ctx, num_clauses.dims() == 1, rank_error("num_clauses", 1, num_clauses));
    OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(k_tensor.shape()), rank_error("k", 0, k_tensor));

    const int64_t batch = queries.dim_size(0);
    const int64_t dim = queries.dim_size(1);
    const int64_t num_items = items.dim_size(0);
    const int64_t num_words = item_bits.dim_size(1);
    const int64_t max_clauses = clauses.dim_size(1);
    const int64_t k = k_tensor.scalar<int32_t>()();

    OP_REQUIRES(ctx, k > 0, errors::InvalidArgument("LinrMaskedTopK: k must be positive, got ", k));
    OP_REQUIRES(ctx, items.dim_size(1) == dim,
                errors::InvalidArgument(
                    "LinrMaskedTopK: embedding dimension d mismatch: queries have d=", dim,
                    " but items have d=", items.dim_size(1)));
    OP_REQUIRES(ctx, item_bits.dim_size(0) == num_items,
                errors::InvalidArgument("LinrMaskedTopK: number of items N mismatch: items has ",
                                        num_items, " rows but item_bits has ",
                                        item_bits.dim_size(0)));
    OP_REQUIRES(ctx, clauses.dim_size(2) == num_words,
                errors::InvalidArgument(
                    "LinrMaskedTopK: bitset words W mismatch: item_bits has W=", num_words,
                    " but clauses has W=", clauses.dim_size(2)));
    OP_REQUIRES(ctx, clauses.dim_size(0) == batch && num_clauses.dim_size(0) == batch,
                errors::InvalidArgument("LinrMaskedTopK: batch size B mismatch: queries ", batch,
                                        ", clauses ", clauses.dim_size(0), ", num_clauses ",
                                        num_clauses.dim_size(0)));
    OP_REQUIRES(ctx, num_items <= std::numeric_limits<int32_t>::max(),
                errors::InvalidArgument("LinrMaskedTopK: too many items for int32 indices: ",
                                        num_items));

    const int32_t* clause_counts = num_clauses.flat<int32_t>().data();
    bool any_filter = false;
    for (int64_t b = 0; b < batch; ++b) {
      const int32_t n = clause_counts[b];
      OP_REQUIRES(ctx, n >= 0 && n <= max_clauses,
                  errors::InvalidArgument("LinrMaskedTopK: num_clauses[", b, "] = ", n,
                                          " is out of range [0, ", max_clauses, "]"));
      any_filter |= n > 0;
    }

    Tensor* scores_out = nullptr;
    Tensor* indices_out = nullptr;
    Tensor* count_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, k}), &scores_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, k}), &indices_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch}), &count_out));
    if (batch == 0) return;

    const float* query_data = queries.flat<float>().data();
    const T* item_data = items.flat<T>().data();
    const int32_t* bits_data = item_bits.flat<int32_t>().data();
    const int32_t* clause_data = clauses.flat<int32_t>().data();

    // Plan tasks: item shards first (each streams its items once for a group
    // of queries); split queries too when there are too few item shards.
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int64_t threads = std::max(1, pool->NumThreads());
    const int64_t target_tasks = 4 * threads;
    constexpr int64_t kMinItemsPerShard = 2048;
    const int64_t item_shards = std::max<int64_t>(
        1, std::min(target_tasks, num_items / kMinItemsPerShard));
    const int64_t query_groups =
        std::max<int64_t>(1, std::min(batch, (target_tasks + item_shards - 1) / item_shards));
    const int64_t items_per_shard = (num_items + item_shards - 1) / item_shards;
    const int64_t queries_per_group = (batch + query_groups - 1) / query_groups;

    // partial[shard * batch + b]: best <= k candidates of query b in the shard.
    std::vector<std::vector<ScoredItem>> partial(item_shards * batch);
    auto run_task = [&](int64_t task) {
      const int64_t shard = task / query_groups;
      const int64_t group = task % query_groups;
      const int64_t i_begin = std::min(num_items, shard * items_per_shard);
      const int64_t i_end = std::min(num_items, i_begin + items_per_shard);
      const int64_t b_begin = std::min(batch, group * queries_per_group);
      const int64_t b_end = std::min(batch, b_begin + queries_per_group);
      if (i_begin >= i_end || b_begin >= b_end) return;
      std::vector<CandidateBuffer> buffers(b_end - b_begin);
      for (auto& buffer : buffers) buffer.Reset(k, i_end - i_begin);
      for (int64_t i = i_begin; i < i_end; ++i) {
        const T* item = item_data + i * dim;
        const int32_t* bits = bits_data + i * num_words;
        for (int64_t b = b_begin; b < b_end; ++b) {
          if (any_filter && !PassesFilter(bits, clause_data + b * max_clauses * num_words,
                                          clause_counts[b], num_words)) {
            continue;
          }
          const float score = RankableScore(Score<T>(query_data + b * dim, item, dim));
          CandidateBuffer& buffer = buffers[b - b_begin];
          if (buffer.Admits(score)) buffer.Push(score, static_cast<int32_t>(i));
        }
      }
      for (int64_t b = b_begin; b < b_end; ++b) {
        partial[shard * batch + b] = std::move(buffers[b - b_begin].Finish());
      }
    };
    const int64_t num_tasks = item_shards * query_groups;
    const int64_t task_cost = std::max<int64_t>(
        1, items_per_shard * queries_per_group * std::max<int64_t>(dim, 1) * 2);
    pool->ParallelFor(num_tasks, task_cost, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) run_task(task);
    });

    // Merge shards per query.
    float* scores = scores_out->flat<float>().data();
    int32_t* indices = indices_out->flat<int32_t>().data();
    int32_t* counts = count_out->flat<int32_t>().data();
    auto merge_query = [&](int64_t b) {
      std::vector<ScoredItem> merged;
      for (int64_t shard = 0; shard < item_shards; ++shard) {
        const auto& part = partial[shard * batch + b];
        merged.insert(merged.end(), part.begin(), part.end());
      }
      const int64_t kept = std::min<int64_t>(k, merged.size());
      auto by_rank = [](const ScoredItem& x, const ScoredItem& y) { return RanksBefore(x, y); };
      std::partial_sort(merged.begin(), merged.begin() + kept, merged.end(), by_rank);
      for (int64_t j = 0; j < kept; ++j) {
        scores[b * k + j] = merged[j].score;
        indices[b * k + j] = merged[j].index;
      }
      for (int64_t j = kept; j < k; ++j) {
        scores[b * k + j] = -std::numeric_limits<float>::infinity();
        indices[b * k + j] = -1;
      }
      counts[b] = static_cast<int32_t>(kept);
    };
    const int64_t merge_cost = std::max<int64_t>(1, item_shards * k * 8);
    pool->ParallelFor(batch, merge_cost, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) merge_query(b);
    });
  }
};

#define LINR_REGISTER_MASKED_TOPK(T)                                                   \
  REGISTER_KERNEL_BUILDER(                                                             \
      Name("LinrMaskedTopK").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      LinrMaskedTopKOp<T>)

LINR_REGISTER_MASKED_TOPK(float);
LINR_REGISTER_MASKED_TOPK(Eigen::half);
LINR_REGISTER_MASKED_TOPK(::tensorflow::bfloat16);

#undef LINR_REGISTER_MASKED_TOPK

}  // namespace linr
