// CUDA counting-sort top-k of LinrHammingTopK for very large k (the
// "counting" path of hamming_large_k.h; LiNR's coarse stage: top-50M of 1B
// codes). Raw device pointers and a cudaStream_t, no TensorFlow: the same code
// builds into the TF GPU kernel (hamming_kernels_gpu.cu.cc) and into the
// standalone liblinr_cuda.so (linr_hamming_topk / linr_hamming_topk_large_k).
//
// Scores are integers in [0, m], m = 32 * Wc (matching bits), so the top k is
// found by counting, not by a heap or a sort. Items are cut into `ranges`
// contiguous ranges of `range_items` items (a multiple of 32), one warp per
// (query, range); five launches per call, no host synchronisation:
//   1. HistKernel     per warp a histogram of the scores of its passing items
//                     (m + 1 bins, shared memory) -> counts[q][score][range];
//   2. PrefixKernel   per (query, score) the exclusive prefix over ranges, in
//                     place, and the total;
//   3. ThresholdKernel per query: count = min(k, passing items); threshold
//                     t = the largest score with (items scoring >= t) >=
//                     count; above[s] = items scoring > s (for s >= t);
//   4. ScatterKernel  every warp recomputes its scores (the codes are read a
//                     second time) and, in index order, writes each item with
//                     score s >= t to slot above[s] + counts[q][s][range] +
//                     (earlier items of score s in its range: __match_any_sync
//                     within a step of 32 items, a per-warp counter across
//                     steps) if that slot is < count. Slot order is RanksBefore
//                     (select/ordering.h: score descending, ties by smaller
//                     index), and the items scoring t are taken by index up to
//                     the quota, so the outputs equal the buffer path
//                     (hamming_gpu.cu.h) and the CPU kernels bit for bit.
//                     A warp with no selected item returns at once.
//   5. PadKernel      -inf / -1 in slots [count, k).
// Loads: a warp walks its range 32 mask words (1024 items) at a time, one
// coalesced mask load per lane, skips words with no passing item and loads
// the codes of passing items only, U words per step in flight (vector loads
// for Wc in {1, 2, 4, 8, 16} with aligned codes; any other Wc <= 64 a generic
// loop). Cost: two scans of the codes (2 x 8 GB for 1B x 64-bit codes) plus
// the mask twice and the k output slots once.
//
// Workspace (CountingWorkspaceBytes): counts [B][m + 1][ranges] uint32 (ranges
// chosen so that this stays <= 2^26 cells = 256 MiB), totals and above [B][m +
// 1] uint32, params [B][2] int32 (t, count). Limits: k >= 1, Wc <=
// kCountingMaxWordsGpu = 64 (the per-warp histograms: 8 warps x (32 Wc + 1) x
// 4 bytes of shared memory), N <= INT32_MAX; k itself is limited only by the
// outputs (hamming_large_k.h).
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_GPU_CU_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_GPU_CU_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "custom_ops/quantization/hamming_common.h"
#include "custom_ops/quantization/hamming_gpu.cu.h"
#include "custom_ops/quantization/hamming_large_k.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu.cu.h"

namespace linr {
namespace hamming_counting_gpu {

constexpr int kWarps = 8;                          // warps per block (passes 1 and 4)
constexpr uint32_t kFull = 0xffffffffu;
constexpr int64_t kMaxCountCells = int64_t{1} << 26;  // counts: <= 256 MiB
constexpr int64_t kMaxRanges = 65536;
constexpr int64_t kMinRangeItems = 2048;
constexpr int kPrefixThreads = 1024;
constexpr int kPrefixPerThread = 8;
constexpr int64_t kMaxGridY = 65535;

// ---------------------------------------------------------------------------
// Plan and workspace.
struct Plan {
  int64_t bins = 0, ranges = 0, range_items = 0;
  size_t counts = 0, totals = 0, above = 0, params = 0, total = 0;  // byte offsets
};

inline size_t AlignUp256(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

inline Plan MakePlan(int64_t batch, int64_t num_items, int64_t words) {
  Plan p;
  const int64_t b = std::max<int64_t>(batch, 1);
  p.bins = 32 * words + 1;
  int64_t cap = kMaxCountCells / (b * p.bins);
  cap = std::min(std::max<int64_t>(cap, kWarps), kMaxRanges) / kWarps * kWarps;
  const int64_t n = std::max<int64_t>(num_items, 1);
  int64_t per = (n + cap - 1) / cap;
  per = std::max<int64_t>((per + 31) / 32 * 32, kMinRangeItems);
  p.range_items = per;
  p.ranges = ((n + per - 1) / per + kWarps - 1) / kWarps * kWarps;
  size_t off = 0;
  p.counts = off;
  off = AlignUp256(off + sizeof(uint32_t) * b * p.bins * p.ranges);
  p.totals = off;
  off = AlignUp256(off + sizeof(uint32_t) * b * p.bins);
  p.above = off;
  off = AlignUp256(off + sizeof(uint32_t) * b * p.bins);
  p.params = off;
  off = AlignUp256(off + sizeof(int32_t) * 2 * b);
  p.total = off;
  return p;
}

// Bytes of device workspace LaunchHammingTopKCounting needs.
inline size_t CountingWorkspaceBytes(int64_t batch, int64_t num_items, int64_t words) {
  return std::max<size_t>(MakePlan(batch, num_items, std::max<int64_t>(words, 1)).total, 256);
}

// ---------------------------------------------------------------------------
// Kernels.
struct Args {
  const uint32_t* queries;  // [B, words]
  const uint32_t* codes;    // [N, words]
  const uint32_t* mask;     // [B, mask_words] or nullptr (every item passes)
  int64_t q0;               // first query of this launch (blockIdx.y + q0)
  int64_t num_items, words, mask_words, bins, ranges, range_items, k;
  uint32_t* counts;         // [B][bins][ranges]
  uint32_t* totals;         // [B][bins]
  uint32_t* above;          // [B][bins]
  int32_t* params;          // [B][2]: threshold score, selected count
  float* scores;            // [B, k]
  int32_t* idx;             // [B, k]
};

// Code loads, scoring and the vector-width choice are the scan's
// (hamming_gpu.cu.h): the same integers on every path.
using hamming_gpu::FixedWidth;
using hamming_gpu::LoadCode;
using hamming_gpu::ScoreFixed;
using hamming_gpu::ScoreGeneric;
using hamming_gpu::Unroll;

// Pass 1 (kScatter false): per-warp histograms -> counts. Pass 4 (kScatter
// true): slots from above + counts (exclusive prefixes), writes the outputs.
// Dynamic shared memory: kWarps * bins uint32 (histogram / slot counters).
template <int WC, bool kScatter>
__global__ void __launch_bounds__(kWarps * 32) CountPassKernel(Args a) {
  constexpr int U = Unroll<WC>::value;
  constexpr int R = WC > 0 ? WC : 1;
  extern __shared__ uint32_t smem[];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t q = a.q0 + blockIdx.y;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  const int64_t bins = a.bins;
  uint32_t* ctr = smem + warp * bins;
  const int64_t begin = g * a.range_items;
  const int64_t end = min(a.num_items, begin + a.range_items);
  int t = 0;
  int64_t sel = 0;
  if constexpr (kScatter) {
    t = a.params[2 * q];
    sel = a.params[2 * q + 1];
    bool any = false;
    for (int64_t b = t + lane; b < bins; b += 32) {
      const int64_t row = (q * bins + b) * a.ranges;
      const uint32_t prefix = a.counts[row + g];
      const uint32_t next = g + 1 < a.ranges ? a.counts[row + g + 1] : a.totals[q * bins + b];
      const uint32_t slot = a.above[q * bins + b] + prefix;
      ctr[b] = slot;
      any |= next > prefix && static_cast<int64_t>(slot) < sel;
    }
    if (!__any_sync(kFull, any)) return;  // nothing of this range is selected
  } else {
    for (int64_t b = lane; b < bins; b += 32) ctr[b] = 0;
  }
  __syncwarp();
  uint32_t qc[R];
  if constexpr (WC > 0) {
#pragma unroll
    for (int j = 0; j < WC; ++j) qc[j] = __ldg(a.queries + q * WC + j);
  }
  const uint32_t* qp = a.queries + q * a.words;
  const uint32_t* mrow = a.mask != nullptr ? a.mask + q * a.mask_words : nullptr;
  float* out_s = a.scores + q * a.k;
  int32_t* out_i = a.idx + q * a.k;
  for (int64_t c0 = begin; c0 < end; c0 += 1024) {
    const int64_t w = c0 / 32 + lane;
    uint32_t m = 0;
    if (w * 32 < end) {
      m = HammingValidBits(w, a.num_items);
      if (mrow != nullptr) m &= __ldg(mrow + w);
    }
    uint32_t live = __ballot_sync(kFull, m != 0u);
    while (live != 0u) {
      int js[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (live != 0u) {
          js[u] = __ffs(live) - 1;
          live &= live - 1u;
        } else {
          js[u] = -1;
        }
      }
      bool bit[U];
      int64_t item[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const uint32_t mw = __shfl_sync(kFull, m, js[u] < 0 ? 0 : js[u]);
        bit[u] = js[u] >= 0 && ((mw >> lane) & 1u);
        item[u] = (c0 / 32 + js[u]) * 32 + lane;
      }
      uint32_t code[U][R];
      if constexpr (WC > 0) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          if (bit[u]) LoadCode<WC>(a.codes + item[u] * WC, code[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        int s = -1;
        if (bit[u]) {
          if constexpr (WC > 0) {
            s = ScoreFixed<WC>(qc, code[u]);
          } else {
            s = ScoreGeneric(qp, a.codes, item[u], a.words);
          }
        }
        if constexpr (!kScatter) {
          if (bit[u]) atomicAdd(ctr + s, 1u);
        } else {
          const bool want = bit[u] && s >= t;
          const uint32_t wm = __ballot_sync(kFull, want);
          if (want) {
            // Lanes of this step with the same score, in lane (= index) order.
            const uint32_t peers = __match_any_sync(wm, s);
            const uint32_t slot = ctr[s] + __popc(peers & ((1u << lane) - 1u));
            __syncwarp(wm);
            if (lane == __ffs(peers) - 1) ctr[s] += __popc(peers);
            if (static_cast<int64_t>(slot) < sel) {
              out_s[slot] = static_cast<float>(s);
              out_i[slot] = static_cast<int32_t>(item[u]);
            }
          }
          __syncwarp();
        }
      }
    }
  }
  if constexpr (!kScatter) {
    __syncwarp();
    for (int64_t b = lane; b < bins; b += 32) a.counts[(q * bins + b) * a.ranges + g] = ctr[b];
  }
}

// Pass 2: one block per (score, query): exclusive prefix over ranges in
// place, total -> totals.
__global__ void __launch_bounds__(kPrefixThreads) PrefixKernel(Args a) {
  __shared__ uint32_t warp_sums[kPrefixThreads / 32];
  const int64_t q = a.q0 + blockIdx.y;
  const int64_t b = blockIdx.x;
  uint32_t* row = a.counts + (q * a.bins + b) * a.ranges;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  uint32_t carry = 0;
  for (int64_t base = 0; base < a.ranges; base += kPrefixThreads * kPrefixPerThread) {
    const int64_t i0 = base + static_cast<int64_t>(threadIdx.x) * kPrefixPerThread;
    uint32_t v[kPrefixPerThread];
    uint32_t sum = 0;
#pragma unroll
    for (int j = 0; j < kPrefixPerThread; ++j) {
      v[j] = i0 + j < a.ranges ? row[i0 + j] : 0u;
      sum += v[j];
    }
    uint32_t incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const uint32_t x = __shfl_up_sync(kFull, incl, o);
      if (lane >= o) incl += x;
    }
    if (lane == 31) warp_sums[warp] = incl;
    __syncthreads();
    if (warp == 0) {
      uint32_t x = warp_sums[lane];
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const uint32_t y = __shfl_up_sync(kFull, x, o);
        if (lane >= o) x += y;
      }
      warp_sums[lane] = x;
    }
    __syncthreads();
    uint32_t run = carry + (warp > 0 ? warp_sums[warp - 1] : 0u) + incl - sum;
#pragma unroll
    for (int j = 0; j < kPrefixPerThread; ++j) {
      if (i0 + j < a.ranges) row[i0 + j] = run;
      run += v[j];
    }
    carry += warp_sums[kPrefixThreads / 32 - 1];
    __syncthreads();  // warp_sums is reused
  }
  if (threadIdx.x == 0) a.totals[q * a.bins + b] = carry;
}

// Pass 3: one thread per query.
__global__ void ThresholdKernel(Args a, int64_t batch, int32_t* out_count) {
  const int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= batch) return;
  const uint32_t* tot = a.totals + q * a.bins;
  uint32_t* above = a.above + q * a.bins;
  int64_t passing = 0;
  for (int64_t b = 0; b < a.bins; ++b) passing += tot[b];
  const int64_t sel = min(a.k, passing);
  int64_t t = a.bins;  // nothing selected
  int64_t acc = 0;
  for (int64_t b = a.bins - 1; b >= 0 && sel > 0; --b) {
    above[b] = static_cast<uint32_t>(acc);
    acc += tot[b];
    if (acc >= sel) {
      t = b;
      break;
    }
  }
  a.params[2 * q] = static_cast<int32_t>(t);
  a.params[2 * q + 1] = static_cast<int32_t>(sel);
  out_count[q] = static_cast<int32_t>(sel);
}

// Pass 5: padding of slots [count, k).
__global__ void PadKernel(Args a) {
  const int64_t q = a.q0 + blockIdx.y;
  const int64_t sel = a.params[2 * q + 1];
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = sel + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < a.k;
       j += stride) {
    a.scores[q * a.k + j] = -__builtin_huge_valf();
    a.idx[q * a.k + j] = -1;
  }
}

// ---------------------------------------------------------------------------
// Launcher.

template <int WC, bool kScatter>
cudaError_t LaunchPass(const Args& a, int64_t nq, size_t smem, cudaStream_t stream) {
  if (smem > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(
        CountPassKernel<WC, kScatter>, cudaFuncAttributeMaxDynamicSharedMemorySize,
        static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  CountPassKernel<WC, kScatter>
      <<<dim3(static_cast<unsigned>(a.ranges / kWarps), static_cast<unsigned>(nq)), kWarps * 32,
         smem, stream>>>(a);
  return cudaGetLastError();
}

template <bool kScatter>
cudaError_t LaunchPassWidth(const Args& a, int wc, int64_t nq, size_t smem,
                            cudaStream_t stream) {
  switch (wc) {
    case 1: return LaunchPass<1, kScatter>(a, nq, smem, stream);
    case 2: return LaunchPass<2, kScatter>(a, nq, smem, stream);
    case 4: return LaunchPass<4, kScatter>(a, nq, smem, stream);
    case 8: return LaunchPass<8, kScatter>(a, nq, smem, stream);
    case 16: return LaunchPass<16, kScatter>(a, nq, smem, stream);
    default: return LaunchPass<0, kScatter>(a, nq, smem, stream);
  }
}

// Runs LinrHammingTopK by counting (any k >= 1). Device pointers:
// query_codes [B, words], item_codes [N, words], mask [B, ceil(N/32)]
// (nullptr: every item passes), outputs scores [B, k], indices [B, k], count
// [B]; `workspace` holds CountingWorkspaceBytes(B, N, words) bytes. Returns
// cudaErrorInvalidValue for k <= 0, words <= 0 or > kCountingMaxWordsGpu,
// N > INT32_MAX or a short workspace. Asynchronous on `stream` (no host
// synchronisation).
inline cudaError_t LaunchHammingTopKCounting(const int32_t* query_codes, const int32_t* item_codes,
                                             const int32_t* mask, int64_t batch,
                                             int64_t num_items, int64_t words, int64_t k,
                                             void* workspace, size_t workspace_bytes,
                                             float* out_scores, int32_t* out_idx,
                                             int32_t* out_count, cudaStream_t stream) {
  if (k <= 0 || words <= 0 || words > kCountingMaxWordsGpu || num_items < 0 || batch < 0 ||
      num_items > std::numeric_limits<int32_t>::max()) {
    return cudaErrorInvalidValue;
  }
  if (batch == 0) return cudaSuccess;
  const TopKOutputs out{out_scores, out_idx, out_count};
  if (num_items == 0) return select_gpu::LaunchFillEmpty(batch, k, out, stream);
  const Plan plan = MakePlan(batch, num_items, words);
  if (workspace_bytes < plan.total) return cudaErrorInvalidValue;
  char* ws = static_cast<char*>(workspace);
  Args a;
  a.queries = reinterpret_cast<const uint32_t*>(query_codes);
  a.codes = reinterpret_cast<const uint32_t*>(item_codes);
  a.mask = reinterpret_cast<const uint32_t*>(mask);
  a.q0 = 0;
  a.num_items = num_items;
  a.words = words;
  a.mask_words = (num_items + 31) / 32;
  a.bins = plan.bins;
  a.ranges = plan.ranges;
  a.range_items = plan.range_items;
  a.k = k;
  a.counts = reinterpret_cast<uint32_t*>(ws + plan.counts);
  a.totals = reinterpret_cast<uint32_t*>(ws + plan.totals);
  a.above = reinterpret_cast<uint32_t*>(ws + plan.above);
  a.params = reinterpret_cast<int32_t*>(ws + plan.params);
  a.scores = out_scores;
  a.idx = out_idx;
  const int wc = FixedWidth(item_codes, words);
  const size_t smem = sizeof(uint32_t) * kWarps * static_cast<size_t>(plan.bins);
  cudaError_t err;
  // Passes 1 and 2 per chunk of <= 65535 queries (grid.y), then 3, then 4, 5.
  for (int64_t q0 = 0; q0 < batch; q0 += kMaxGridY) {
    const int64_t nq = std::min(kMaxGridY, batch - q0);
    a.q0 = q0;
    if ((err = LaunchPassWidth<false>(a, wc, nq, smem, stream)) != cudaSuccess) return err;
    PrefixKernel<<<dim3(static_cast<unsigned>(plan.bins), static_cast<unsigned>(nq)),
                   kPrefixThreads, 0, stream>>>(a);
    if ((err = cudaGetLastError()) != cudaSuccess) return err;
  }
  a.q0 = 0;
  ThresholdKernel<<<static_cast<unsigned>((batch + 127) / 128), 128, 0, stream>>>(a, batch,
                                                                                  out_count);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;
  const int64_t pad_blocks = std::min<int64_t>((k + 255) / 256, 1024);
  for (int64_t q0 = 0; q0 < batch; q0 += kMaxGridY) {
    const int64_t nq = std::min(kMaxGridY, batch - q0);
    a.q0 = q0;
    if ((err = LaunchPassWidth<true>(a, wc, nq, smem, stream)) != cudaSuccess) return err;
    PadKernel<<<dim3(static_cast<unsigned>(pad_blocks), static_cast<unsigned>(nq)), 256, 0,
                stream>>>(a);
    if ((err = cudaGetLastError()) != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace hamming_counting_gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_LARGE_K_GPU_CU_H_
