// Very large k for LinrHammingTopK (issue 13, LiNR's coarse stage: top-50M of
// 1B codes): the limits and the choice between the two selection paths,
// shared by the CPU kernel (hamming_large_k_cpu.h) and the CUDA kernel
// (hamming_large_k_gpu.cu.h). Host only, no TensorFlow, no CUDA.
//
// Two selection paths give identical outputs (the same total order:
// select/ordering.h, score descending, ties by smaller index):
//   buffer    per-query candidate buffers (CPU: CandidateBuffer + shard
//             merge; GPU: select/select_gpu.cu.h, k <= 16384);
//   counting  scores are small integers (0..32*Wc matching bits), so the top
//             k is a counting sort: pass 1 histograms the scores of the
//             passing items per (query, range of items); the threshold t is
//             the largest score with count(score >= t) >= k; pass 2 recomputes
//             the scores and writes every item with score > t, and the first
//             (by index) items with score == t up to the remaining quota,
//             straight to its output slot: (selected items with a higher
//             score) + (items of the same score in earlier ranges) + (earlier
//             items of the same score in its own range). No sort, no heap;
//             cost = two scans of the codes plus the output writes.
// Default: counting when min(k, N) > kCountingMinKCpu = 4096 on the CPU
// (measured on a Zen 3 machine, 4M x 64-bit codes: at k = 4096 both paths take
// ~30-40 ms, at 16384 counting is 1.7-2x faster, at 65536 4.6x) and above
// kCountingMinKGpu = 16384 (the GPU buffer path's limit) on the GPU; buffer
// otherwise. $LINR_HAMMING_TOPK_SELECT=counting forces the
// counting path for every k and =buffer the buffer path (for tests and
// benchmarks that compare both; on the GPU, buffer with min(k, N) > 16384 is
// the buffer path's Unimplemented error).
//
// Largest supported k: k is an int32 (k <= 2^31 - 1) and the outputs must
// hold B * k <= kHammingMaxOutputSlots = 2^31 slots (8 bytes a slot: scores
// float32 + indices int32, i.e. at most 16 GiB of outputs); a larger B * k is
// an InvalidArgument naming k, B and the limit (hamming_validate.h). The GPU
// counting path takes codes of up to kCountingMaxWordsGpu = 64 words (2048
// bits; the per-warp histograms of 32 * Wc + 1 bins live in shared memory).
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace linr {

constexpr int64_t kHammingMaxK = 2147483647;                 // int32 k
constexpr int64_t kHammingMaxOutputSlots = int64_t{1} << 31;  // B * k
constexpr int64_t kCountingMinKCpu = 4096;    // counting above this min(k, N)
constexpr int64_t kCountingMinKGpu = 16384;  // = select_gpu::kMaxK
constexpr int64_t kCountingMaxWordsGpu = 64;

enum class HammingSelect { kAuto, kBuffer, kCounting };

// $LINR_HAMMING_TOPK_SELECT: "counting", "buffer", else automatic.
inline HammingSelect HammingSelectFromEnv() {
  const char* env = std::getenv("LINR_HAMMING_TOPK_SELECT");
  if (env != nullptr && std::strcmp(env, "counting") == 0) return HammingSelect::kCounting;
  if (env != nullptr && std::strcmp(env, "buffer") == 0) return HammingSelect::kBuffer;
  return HammingSelect::kAuto;
}

// True when the counting path runs for min(k, N) = k_eff on a device whose
// crossover is min_k (kCountingMinKCpu or kCountingMinKGpu).
inline bool HammingUseCounting(int64_t k_eff, int64_t min_k) {
  switch (HammingSelectFromEnv()) {
    case HammingSelect::kCounting: return true;
    case HammingSelect::kBuffer: return false;
    default: return k_eff > min_k;
  }
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_H_
