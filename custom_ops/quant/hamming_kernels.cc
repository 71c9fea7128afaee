// CPU kernel of LinrHammingTopK.
//
// Items are split into shards of whole mask words, one task per shard on TF's
// intra-op thread pool. A task walks its shard in chunks (so the chunk's codes
// stay in L2 while every query scans them); for each query it visits the set
// mask bits in ascending index, scores the item (m - popcount(xor)) and keeps
// a per-query candidate buffer. Scores are small integers; a buffer admits an
// item only when its score beats the buffer's k-th best (items arrive in
// ascending index, so an equal score always loses the tie). Per-shard results
// are merged per query with the full (score desc, index asc) order.
//
// Popcount: the scan is compiled twice, with the POPCNT instruction (chosen at
// run time when the CPU has it) and portably; $LINR_CPU_ISA=portable forces
// the portable version. Both give identical results.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "custom_ops/quant/hamming_common.h"
#include "custom_ops/quant/hamming_validate.h"
#include "custom_ops/topk/topk_common.h"
#include "custom_ops/topk/topk_merge.h"
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

namespace {

constexpr const char* kOpName = "LinrHammingTopK";

// Best k of a stream of (integer score, ascending index) candidates; up to 2k
// entries, compacted to the best k when full. `threshold` is the k-th best
// score once full (-1 before: every score >= 0 is admitted).
struct HammingBuffer {
  int64_t k = 0;
  int threshold = -1;
  std::vector<ScoredItem> items;

  void Reset(int64_t new_k) {
    k = new_k;
    threshold = -1;
    items.clear();
  }

  void Push(int score, int32_t index) {
    items.push_back(ScoredItem{static_cast<float>(score), index});
    if (static_cast<int64_t>(items.size()) >= 2 * k) Compact();
  }

  void Compact() {
    auto by_rank = [](const ScoredItem& a, const ScoredItem& b) { return RanksBefore(a, b); };
    std::nth_element(items.begin(), items.begin() + (k - 1), items.end(), by_rank);
    items.resize(k);
    threshold = static_cast<int>(items[k - 1].score);
  }
};

// Scans mask words [w_begin, w_end) of one query. kWords > 0: code width known
// at compile time (64-bit loads); 0: `words` at run time.
template <int kWords>
inline __attribute__((always_inline)) void ScanBody(const uint32_t* query,
                                                    const uint32_t* codes, int64_t words,
                                                    const uint32_t* mask_row, int64_t w_begin,
                                                    int64_t w_end, int64_t num_items,
                                                    HammingBuffer* buf) {
  const int64_t nw = kWords > 0 ? kWords : words;
  const int bits_total = static_cast<int>(32 * nw);
  uint64_t q64[kWords > 0 ? kWords / 2 + 1 : 1];
  if (kWords > 0) std::memcpy(q64, query, sizeof(uint32_t) * kWords);
  auto distance = [&](int64_t item) {
    const uint32_t* code = codes + item * nw;
    if (kWords > 0) {
      int dist = 0;
      for (int j = 0; j < kWords / 2; ++j) {
        uint64_t c;
        std::memcpy(&c, code + 2 * j, sizeof(c));
        dist += Popcount64(c ^ q64[j]);
      }
      return dist;
    }
    return HammingDistance(query, code, nw);
  };
  int threshold = buf->threshold;
  int scores[32];
  for (int64_t w = w_begin; w < w_end; ++w) {
    uint32_t bits = mask_row[w] & HammingValidBits(w, num_items);
    if (bits == 0) continue;
    const int64_t base = w * 32;
    if (Popcount32(bits) >= 8) {
      // Dense word: score all its items branch-free, then admit by threshold.
      const int n = static_cast<int>(std::min<int64_t>(32, num_items - base));
      uint32_t admit = 0;
      for (int i = 0; i < n; ++i) {
        scores[i] = bits_total - distance(base + i);
        admit |= static_cast<uint32_t>(scores[i] > threshold) << i;
      }
      admit &= bits;
      while (admit != 0) {
        const int i = __builtin_ctz(admit);
        admit &= admit - 1;
        // The threshold may have risen since `admit` was computed.
        if (scores[i] > threshold) {
          buf->Push(scores[i], static_cast<int32_t>(base + i));
          threshold = buf->threshold;
        }
      }
      continue;
    }
    while (bits != 0) {
      const int bit = __builtin_ctz(bits);
      bits &= bits - 1;
      const int score = bits_total - distance(base + bit);
      if (score > threshold) {
        buf->Push(score, static_cast<int32_t>(base + bit));
        threshold = buf->threshold;
      }
    }
  }
}

template <int kWords>
void ScanPortable(const uint32_t* query, const uint32_t* codes, int64_t words,
                  const uint32_t* mask_row, int64_t w_begin, int64_t w_end, int64_t num_items,
                  HammingBuffer* buf) {
  ScanBody<kWords>(query, codes, words, mask_row, w_begin, w_end, num_items, buf);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define LINR_HAVE_POPCNT_PATH 1
template <int kWords>
__attribute__((target("popcnt"))) void ScanPopcnt(const uint32_t* query, const uint32_t* codes,
                                                  int64_t words, const uint32_t* mask_row,
                                                  int64_t w_begin, int64_t w_end,
                                                  int64_t num_items, HammingBuffer* buf) {
  ScanBody<kWords>(query, codes, words, mask_row, w_begin, w_end, num_items, buf);
}
#else
#define LINR_HAVE_POPCNT_PATH 0
#endif

using ScanFn = void (*)(const uint32_t*, const uint32_t*, int64_t, const uint32_t*, int64_t,
                        int64_t, int64_t, HammingBuffer*);

template <int kWords>
ScanFn PickScan(bool use_popcnt) {
#if LINR_HAVE_POPCNT_PATH
  if (use_popcnt) return &ScanPopcnt<kWords>;
#endif
  return &ScanPortable<kWords>;
}

// The scan for code width `words`, with POPCNT when the CPU has it.
ScanFn SelectScan(int64_t words) {
  const char* env = std::getenv("LINR_CPU_ISA");
  bool use_popcnt = !(env != nullptr && std::strcmp(env, "portable") == 0);
#if LINR_HAVE_POPCNT_PATH
  use_popcnt = use_popcnt && __builtin_cpu_supports("popcnt");
#else
  use_popcnt = false;
#endif
  switch (words) {
    case 2: return PickScan<2>(use_popcnt);
    case 4: return PickScan<4>(use_popcnt);
    case 8: return PickScan<8>(use_popcnt);
    case 16: return PickScan<16>(use_popcnt);
    case 32: return PickScan<32>(use_popcnt);
    default: return PickScan<0>(use_popcnt);
  }
}

class HammingTopKOp : public OpKernel {
 public:
  explicit HammingTopKOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

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
    const int64_t num_words = mask.dim_size(1);

    Tensor* scores_out = nullptr;
    Tensor* indices_out = nullptr;
    Tensor* count_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, k}), &scores_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, k}), &indices_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch}), &count_out));
    if (batch == 0) return;

    const ScanFn scan = SelectScan(words);
    const uint32_t* queries =
        reinterpret_cast<const uint32_t*>(query_codes.flat<int32_t>().data());
    const uint32_t* codes = reinterpret_cast<const uint32_t*>(item_codes.flat<int32_t>().data());
    const uint32_t* mask_data = reinterpret_cast<const uint32_t*>(mask.flat<int32_t>().data());

    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int64_t threads = std::max(1, pool->NumThreads());
    const int64_t target = (batch > 1 ? 1 : 4) * threads;
    constexpr int64_t kMinWordsPerShard = 64;
    const int64_t shards =
        std::max<int64_t>(1, std::min(target, num_words / kMinWordsPerShard));
    const int64_t words_per_shard = (num_words + shards - 1) / shards;
    // Chunk of mask words whose codes (32 * words * 4 bytes per word) fit in
    // about 256 KiB.
    const int64_t chunk_words = std::max<int64_t>(8, (256 * 1024) / (128 * words));

    std::vector<std::vector<ScoredItem>> partial(shards * batch);
    auto run_shard = [&](int64_t shard) {
      const int64_t w_begin = std::min(num_words, shard * words_per_shard);
      const int64_t w_end = std::min(num_words, w_begin + words_per_shard);
      if (w_begin >= w_end) return;
      std::vector<HammingBuffer> buffers(batch);
      for (auto& b : buffers) b.Reset(k);
      for (int64_t c = w_begin; c < w_end; c += chunk_words) {
        const int64_t c_end = std::min(w_end, c + chunk_words);
        for (int64_t q = 0; q < batch; ++q) {
          scan(queries + q * words, codes, words, mask_data + q * num_words, c, c_end,
               num_items, &buffers[q]);
        }
      }
      for (int64_t q = 0; q < batch; ++q) {
        auto& items = buffers[q].items;
        if (static_cast<int64_t>(items.size()) > k) buffers[q].Compact();
        partial[shard * batch + q] = std::move(items);
      }
    };
    const int64_t shard_cost = std::max<int64_t>(1, words_per_shard * 32 * batch * words * 4);
    pool->ParallelFor(shards, shard_cost, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) run_shard(s);
    });

    float* scores = scores_out->flat<float>().data();
    int32_t* indices = indices_out->flat<int32_t>().data();
    int32_t* counts = count_out->flat<int32_t>().data();
    auto merge_query = [&](int64_t b) {
      MergeShardsForQuery(partial, shards, batch, k, b, scores, indices, counts);
    };
    pool->ParallelFor(batch, std::max<int64_t>(1, shards * k * 8),
                      [&](int64_t begin, int64_t end) {
                        for (int64_t b = begin; b < end; ++b) merge_query(b);
                      });
  }
};

REGISTER_KERNEL_BUILDER(Name("LinrHammingTopK").Device(::tensorflow::DEVICE_CPU),
                        HammingTopKOp);

}  // namespace
}  // namespace linr
