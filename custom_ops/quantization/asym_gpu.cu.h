// CUDA kernel of LinrAsymmetricHammingTopK over raw device pointers and a
// cudaStream_t (no TensorFlow); built into the TF GPU functor
// (asym_kernels_gpu.cu.cc).
//
// Scores are asym_common.h's (the same integer parts, the same float steps
// rounded one at a time: __fmul_rn / __fadd_rn, no FMA contraction), so
// results are bit-identical to the CPU kernel's. Order: RanksBefore
// (select/ordering.h), encoded in a 64-bit key: the float score mapped to an
// order-preserving uint32 (NaN as -inf, -0 as +0) in the high half, ~index in
// the low half, so keys are distinct and key order is rank order.
//
// Scan: block row y = query (grid-stride over the batch); the query's Bq bit
// planes (<= 8 x 32 words) and U sit in shared memory. A warp takes one mask
// word at a time (grid-stride over the segment), lane = item: a lane whose
// bit is set loads its code (Wc words) and its factor, computes popcount(x)
// and the bit-sliced dot product, and appends its key to the query's
// candidate buffer when key >= the query's threshold (warp-aggregated
// atomic). Empty mask words cost one load of the word.
//
// Selection (k <= kMaxK): select/select_gpu.cu.h RunSegmentedSelect, shared
// with the float and Hamming kernels (segments of growing size, prune after
// each, final sort; overflow reruns in safe mode; one stream sync).
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_ASYM_GPU_CU_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_ASYM_GPU_CU_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "custom_ops/quantization/asym_common.h"
#include "custom_ops/quantization/hamming_common.h"
#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu.cu.h"

namespace linr {
namespace asym_gpu {

using select_gpu::kMaxK;
constexpr int kWarps = 8;            // warps per scan block
constexpr int kMaxWords = 32;        // m <= 1024 bits
constexpr uint32_t kFull = 0xffffffffu;

// ---------------------------------------------------------------------------
// Keys and workspace: the shared selection's (select/select_gpu.cu.h).
using select_gpu::FloatKeyCodec;
inline size_t AsymWorkspaceBytes(int64_t batch, int64_t num_items, int64_t k) {
  return select_gpu::SelectOnlyWorkspaceBytes(batch, num_items, k);
}

// ---------------------------------------------------------------------------
// Scan.
struct ScanArgs {
  const uint32_t* planes;  // [B, bits, words]
  const float* scales;     // [B, 2]
  const uint32_t* codes;   // [N, words]
  const float* factors;    // [N]
  const uint32_t* mask;    // [B, mask_words]
  int64_t batch, num_items, bits, words, mask_words;
  int64_t word_begin, word_end;  // segment, in mask words
  uint64_t* buf;
  const uint64_t* thr;
  uint32_t* cnt;
  int32_t* flags;
  int64_t cap;
};

__device__ __forceinline__ void Append(const ScanArgs& a, int64_t q, bool want, uint64_t key,
                                       int lane) {
  const uint32_t b = __ballot_sync(kFull, want);
  if (b == 0u) return;
  const int leader = __ffs(b) - 1;
  uint32_t base = 0;
  if (lane == leader) base = atomicAdd(a.cnt + q, static_cast<uint32_t>(__popc(b)));
  base = __shfl_sync(kFull, base, leader);
  if (want) {
    const uint32_t slot = base + static_cast<uint32_t>(__popc(b & ((1u << lane) - 1u)));
    if (slot < static_cast<uint64_t>(a.cap)) {
      a.buf[q * a.cap + slot] = key;
    } else {
      a.flags[0] = 1;  // overflow: the launcher reruns in safe mode
    }
  }
}

__global__ void __launch_bounds__(kWarps * 32) ScanKernel(ScanArgs a) {
  __shared__ uint32_t planes_s[kAsymMaxQueryBits * kMaxWords];
  __shared__ int32_t u_s;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t words = a.words;
  const int bits = static_cast<int>(a.bits);
  const int32_t m = static_cast<int32_t>(32 * words);
  for (int64_t q = blockIdx.y; q < a.batch; q += gridDim.y) {
    __syncthreads();  // the previous query's planes are no longer read
    const uint32_t* qp = a.planes + q * bits * words;
    for (int64_t i = threadIdx.x; i < bits * words; i += blockDim.x) planes_s[i] = qp[i];
    __syncthreads();
    if (threadIdx.x == 0) {
      int32_t u = 0;
      for (int p = 0; p < bits; ++p) u += AsymCodeOnes(planes_s + p * words, words) << p;
      u_s = u;
    }
    __syncthreads();
    const int32_t u = u_s;
    const float lo = a.scales[2 * q], delta = a.scales[2 * q + 1];
    const uint64_t thr = a.thr[q];
    const uint32_t* mrow = a.mask + q * a.mask_words;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
    for (int64_t w = a.word_begin + static_cast<int64_t>(blockIdx.x) * kWarps + warp;
         w < a.word_end; w += stride) {
      const uint32_t word = __ldg(mrow + w) & HammingValidBits(w, a.num_items);
      if (word == 0u) continue;  // warp-uniform
      const bool pass = (word >> lane) & 1u;
      const int64_t item = w * 32 + lane;
      uint64_t key = 0;
      if (pass) {
        uint32_t code[kMaxWords];
        const uint32_t* c = a.codes + item * words;
        for (int64_t j = 0; j < words; ++j) code[j] = __ldg(c + j);
        const int32_t ones = AsymCodeOnes(code, words);
        const int32_t s = AsymPlaneDot(code, planes_s, bits, words);
        key = select_gpu::FloatKey(AsymScore(ones, s, u, m, lo, delta, __ldg(a.factors + item)), item);
      }
      Append(a, q, pass && key >= thr, key, lane);
    }
  }
}

// ---------------------------------------------------------------------------
// Launcher: top-k of every query into out (device pointers); `workspace`
// holds AsymWorkspaceBytes(B, N, k) bytes. Returns cudaErrorInvalidValue for
// k <= 0, bits outside 1..8, words outside 1..32, N > INT32_MAX or min(k, N)
// > kMaxK. Synchronises `stream` once (overflow flag).
inline cudaError_t LaunchAsymHammingTopK(const int32_t* planes, const float* scales,
                                         const int32_t* item_codes, const float* factors,
                                         const int32_t* mask, int64_t batch, int64_t num_items,
                                         int64_t bits, int64_t words, int64_t k,
                                         void* workspace, size_t workspace_bytes,
                                         float* out_scores, int32_t* out_idx,
                                         int32_t* out_count, cudaStream_t stream) {
  if (k <= 0 || words <= 0 || words > kMaxWords || bits < 1 || bits > kAsymMaxQueryBits ||
      num_items < 0 || batch < 0 || num_items > std::numeric_limits<int32_t>::max()) {
    return cudaErrorInvalidValue;
  }
  if (batch == 0) return cudaSuccess;
  const int64_t k_eff = std::min(k, num_items);
  const TopKOutputs out{out_scores, out_idx, out_count};
  if (k_eff == 0) return select_gpu::LaunchFillEmpty(batch, k, out, stream);
  if (k_eff > kMaxK) return cudaErrorInvalidValue;
  const select_gpu::SelectOnlyLayout lay = select_gpu::MakeSelectOnlyLayout(batch, k_eff);
  if (workspace_bytes < lay.total) return cudaErrorInvalidValue;
  const select_gpu::SelectState<uint32_t> st = select_gpu::SelectStateAt<uint32_t>(workspace, lay);
  int device = 0, sms = 0;
  cudaError_t err;
  if ((err = cudaGetDevice(&device)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess) {
    return err;
  }
  const int64_t mask_words = (num_items + 31) / 32;
  ScanArgs a;
  a.planes = reinterpret_cast<const uint32_t*>(planes);
  a.scales = scales;
  a.codes = reinterpret_cast<const uint32_t*>(item_codes);
  a.factors = factors;
  a.mask = reinterpret_cast<const uint32_t*>(mask);
  a.batch = batch;
  a.num_items = num_items;
  a.bits = bits;
  a.words = words;
  a.mask_words = mask_words;
  a.buf = st.buf;
  a.thr = st.thr;
  a.cnt = st.cnt;
  a.flags = st.flags;
  a.cap = st.cap;
  return select_gpu::RunSegmentedSelect<uint32_t, FloatKeyCodec>(
      st, batch, mask_words, k_eff, k, out, stream, [&](int64_t begin, int64_t end) {
        a.word_begin = begin;
        a.word_end = end;
        const int64_t seg_blocks = (end - begin + kWarps - 1) / kWarps;
        const int64_t rows = std::min<int64_t>(batch, 65535);
        // Enough blocks to fill the device: ~8 per SM over the whole grid.
        const int64_t per_row = std::max<int64_t>(1, (8 * sms + rows - 1) / rows);
        dim3 grid(static_cast<unsigned>(std::max<int64_t>(1, std::min(seg_blocks, per_row))),
                  static_cast<unsigned>(rows));
        ScanKernel<<<grid, kWarps * 32, 0, stream>>>(a);
        return cudaGetLastError();
      });
}

}  // namespace asym_gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_ASYM_GPU_CU_H_
