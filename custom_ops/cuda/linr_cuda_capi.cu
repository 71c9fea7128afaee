// Standalone C API over the LiNR CUDA launchers (no TensorFlow), built into
// liblinr_cuda.so by build.sh; used by bench/gpu/harness.py and
// bench/gpu/hamming_harness.py through ctypes.
// All pointers are device pointers; `stream` is a cudaStream_t (0 = default).
// Return value: 0 on success, else a cudaError_t code.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "custom_ops/filter/filter_mask_gpu.cu.h"
#include "custom_ops/quantization/hamming_gpu.cu.h"
#include "custom_ops/quantization/hamming_large_k.h"
#include "custom_ops/quantization/hamming_large_k_gpu.cu.h"
#include "custom_ops/topk/topk_gpu.cu.h"

extern "C" {

// Host-side check of one program (host memory): nullptr when valid.
const char* linr_validate_program(const int32_t* program, int64_t length, int64_t num_words) {
  return linr::ValidateProgram(program, length, num_words);
}

int linr_filter_mask(const int32_t* item_bits, int64_t num_items, int64_t num_words,
                     const int32_t* program, int64_t length, int64_t batch, int32_t* mask,
                     int32_t* count, void* stream) {
  return static_cast<int>(linr::gpu::LaunchFilterMask(item_bits, num_items, num_words, program,
                                                      length, batch, mask, count,
                                                      static_cast<cudaStream_t>(stream)));
}

size_t linr_topk_workspace_bytes(int64_t batch, int64_t num_items, int64_t k, int prefilter) {
  return linr::gpu::TopKWorkspaceBytes(batch, num_items, k, prefilter != 0);
}

// dtype: 0 = float32, 1 = float16, 2 = bfloat16. strategy: 0 = mask, 1 = prefilter.
int linr_topk(const float* queries, const void* items, int dtype, const int32_t* mask,
              int64_t batch, int64_t num_items, int64_t dim, int64_t k, int strategy,
              void* workspace, size_t workspace_bytes, float* scores, int32_t* indices,
              int32_t* count, void* stream) {
  const bool pre = strategy != 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  cudaError_t e;
  switch (dtype) {
    case 0:
      e = linr::gpu::LaunchTopK<float>(queries, static_cast<const float*>(items), mask, batch,
                                       num_items, dim, k, pre, workspace, workspace_bytes,
                                       scores, indices, count, s);
      break;
    case 1:
      e = linr::gpu::LaunchTopK<__half>(queries, static_cast<const __half*>(items), mask, batch,
                                        num_items, dim, k, pre, workspace, workspace_bytes,
                                        scores, indices, count, s);
      break;
    case 2:
      e = linr::gpu::LaunchTopK<__nv_bfloat16>(queries,
                                               static_cast<const __nv_bfloat16*>(items), mask,
                                               batch, num_items, dim, k, pre, workspace,
                                               workspace_bytes, scores, indices, count, s);
      break;
    default:
      e = cudaErrorInvalidValue;
  }
  return static_cast<int>(e);
}

// Enough for linr_hamming_topk at every code width: for min(k, N) > 16384
// (the counting path) the largest over Wc <= 64;
// linr_hamming_topk_large_k_workspace_bytes is exact.
size_t linr_hamming_topk_workspace_bytes(int64_t batch, int64_t num_items, int64_t k) {
  size_t bytes = linr::hamming_gpu::HammingWorkspaceBytes(batch, num_items, k);
  if (linr::HammingUseCounting(std::min(k, num_items), linr::kCountingMinKGpu)) {
    for (int64_t w = 1; w <= linr::kCountingMaxWordsGpu; ++w) {
      bytes = std::max(bytes,
                       linr::hamming_counting_gpu::CountingWorkspaceBytes(batch, num_items, w));
    }
  }
  return bytes;
}

// LinrHammingTopK: query_codes int32 [B, words], item_codes int32 [N, words],
// mask int32 [B, ceil(N/32)] or NULL (every item passes); outputs scores
// float32 [B, k], indices int32 [B, k], count int32 [B]. N <= INT32_MAX.
// min(k, N) > 16384 (or $LINR_HAMMING_TOPK_SELECT=counting) and Wc <= 64 run
// the counting path (as linr_hamming_topk_large_k), else the buffer path.
int linr_hamming_topk(const int32_t* query_codes, const int32_t* item_codes, const int32_t* mask,
                      int64_t batch, int64_t num_items, int64_t words, int64_t k,
                      void* workspace, size_t workspace_bytes, float* scores, int32_t* indices,
                      int32_t* count, void* stream) {
  if (linr::HammingUseCounting(std::min(k, num_items), linr::kCountingMinKGpu) &&
      words <= linr::kCountingMaxWordsGpu) {
    return static_cast<int>(linr::hamming_counting_gpu::LaunchHammingTopKCounting(
        query_codes, item_codes, mask, batch, num_items, words, k, workspace, workspace_bytes,
        scores, indices, count, static_cast<cudaStream_t>(stream)));
  }
  return static_cast<int>(linr::hamming_gpu::LaunchHammingTopK(
      query_codes, item_codes, mask, batch, num_items, words, k, workspace, workspace_bytes,
      scores, indices, count, static_cast<cudaStream_t>(stream)));
}

size_t linr_hamming_topk_large_k_workspace_bytes(int64_t batch, int64_t num_items,
                                                 int64_t words) {
  return linr::hamming_counting_gpu::CountingWorkspaceBytes(batch, num_items, words);
}

// LinrHammingTopK by counting sort (hamming_large_k_gpu.cu.h) for any k >= 1
// (arguments as linr_hamming_topk; Wc <= 64); no host synchronisation.
int linr_hamming_topk_large_k(const int32_t* query_codes, const int32_t* item_codes,
                              const int32_t* mask, int64_t batch, int64_t num_items,
                              int64_t words, int64_t k, void* workspace, size_t workspace_bytes,
                              float* scores, int32_t* indices, int32_t* count, void* stream) {
  return static_cast<int>(linr::hamming_counting_gpu::LaunchHammingTopKCounting(
      query_codes, item_codes, mask, batch, num_items, words, k, workspace, workspace_bytes,
      scores, indices, count, static_cast<cudaStream_t>(stream)));
}

}  // extern "C"
