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

// linr_hamming_topk's buffer path (k <= 16384) with the scan kernel forced:
// variant 0 = auto (env LINR_HAMMING_MMA = b1 / i8 / off, else b1), 1 = CUDA-core
// kernels, 2 = b1 and.popc tensor cores, 3 = int8 tensor cores (tensor cores only
// for B >= 8 and Wc in {2, 4, 8}; else the CUDA-core kernels). Same results
// whatever the variant.
int linr_hamming_topk_variant(const int32_t* query_codes, const int32_t* item_codes,
                              const int32_t* mask, int64_t batch, int64_t num_items,
                              int64_t words, int64_t k, void* workspace, size_t workspace_bytes,
                              float* scores, int32_t* indices, int32_t* count, void* stream,
                              int variant) {
  return static_cast<int>(linr::hamming_gpu::LaunchHammingTopK(
      query_codes, item_codes, mask, batch, num_items, words, k, workspace, workspace_bytes,
      scores, indices, count, static_cast<cudaStream_t>(stream), variant));
}

// The scan kernel linr_hamming_topk_variant runs for (variant, B, words), codes aligned.
int linr_hamming_mma_variant(int variant, int64_t batch, int64_t words) {
  const int wc = (words == 2 || words == 4 || words == 8) ? static_cast<int>(words) : 0;
  return linr::hamming_gpu::ResolveMmaVariant(variant, batch, wc);
}

// Peak of a variant's tensor-core instruction (2 = b1 m16n8k128 and.popc, 3 =
// s8.u8 m16n8k32): blocks x threads threads, each warp iters x 8 independent
// mma.sync in registers; sink int32 [blocks * threads].
int linr_hamming_mma_peak(int variant, int blocks, int threads, int iters, int32_t* sink,
                          void* stream) {
  return static_cast<int>(linr::hamming_gpu::LaunchMmaPeak(
      variant, blocks, threads, iters, sink, static_cast<cudaStream_t>(stream)));
}

// mma.sync the tensor-core scan issues per 8-item tile and block (mt m-tiles of
// 16 queries in use), and its queries per block.
int64_t linr_hamming_mma_per_tile(int variant, int words, int mt) {
  return linr::hamming_gpu::MmaPerTile(variant, words, mt);
}
int linr_hamming_mma_group(int variant, int words) {
  return linr::hamming_gpu::MmaGroup(variant, words);
}

}  // extern "C"
