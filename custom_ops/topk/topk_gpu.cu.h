// CUDA kernels of LinrMaskedTopK / LinrPrefilterTopK over raw device pointers
// and a cudaStream_t (no TensorFlow).
//
// Both ops share one pipeline; they differ in which rows are streamed:
//   masked:    every 32-row tile of items, in order; tiles whose mask words are
//              zero for every query of the group are skipped, and rows no query
//              wants are not loaded.
//   prefilter: the union of the passing ids of all queries is compacted first
//              (popcount + prefix sum over the OR of the mask words), then only
//              those rows are gathered. When the union holds more than
//              `max_union` ids, the compaction stops after counting and the
//              scan streams every tile as the masked op does: the choice is
//              made on the device, from the count, so the host never waits
//              for it.
// Each streamed row is scored against a group of up to 64 queries at once
// (items read once per group). fp16 items with d % 32 == 0 and d <= 512 use
// tensor cores (mma.sync m16n8k16, fp32 accumulate); the fp32 query is split
// into fp16 hi + lo parts after an exact power-of-two scaling, so the product
// keeps about fp32 precision. Other types/shapes use a CUDA-core path.
//
// Selection (k up to kMaxK) is two-stage, in select/select_gpu.cu.h (shared
// with the Hamming kernel). Stage 1: while streaming, a candidate is appended
// to the query's buffer (capacity `cap`) when its key is >= the query's
// current threshold. Rows are streamed in segments of growing size; after each
// segment a prune kernel radix-selects the k-th best key of each buffer that
// holds more than k entries, keeps exactly k and raises the threshold to it.
// Stage 2: a final prune, then a bitonic sort of the k survivors per query in
// shared memory. A buffer overflow (possible only with adversarial row orders)
// is detected and the whole call reruns with segments small enough that it
// cannot overflow.
//
// Keys are uint64: high 32 bits = order-preserving bits of the score (NaN ->
// -inf, -0 -> +0), low 32 bits = ~index, so key order == RanksBefore order and
// all keys are distinct.
#ifndef LINR_CUSTOM_OPS_TOPK_TOPK_GPU_CU_H_
#define LINR_CUSTOM_OPS_TOPK_TOPK_GPU_CU_H_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu.cu.h"

namespace linr {
namespace gpu {

using select_gpu::kMaxK;           // final sort happens in shared memory
constexpr int kQueryGroup = 64;    // queries scored per pass over the rows
constexpr int kScanWarps = 8;      // warps per scan block

// ---------------------------------------------------------------------------
// Keys.
using select_gpu::FloatKeyCodec;  // float score + index keys (select/select_gpu.cu.h)

// ---------------------------------------------------------------------------
// Workspace.
// Selection state (select_gpu::LayoutSelect), then the prefilter's buffers.
struct TopKLayout : select_gpu::SelectLayout {
  size_t uni = 0, ids = 0, sums = 0, total = 0;
};

constexpr int64_t kUnionWordsPerBlock = 2048;

using select_gpu::AlignUp;

inline TopKLayout ComputeLayout(int64_t batch, int64_t num_items, int64_t k_eff, bool prefilter,
                                size_t* bytes) {
  TopKLayout l;
  size_t off = select_gpu::LayoutSelect(batch, k_eff, &l);
  if (prefilter) {
    const int64_t words = (num_items + 31) / 32;
    const int64_t blocks = (words + kUnionWordsPerBlock - 1) / kUnionWordsPerBlock;
    l.uni = off; off = AlignUp(off + sizeof(uint32_t) * words);
    l.ids = off; off = AlignUp(off + sizeof(int32_t) * num_items);
    l.sums = off; off = AlignUp(off + sizeof(int64_t) * (blocks + 1));
    l.total = off; off = AlignUp(off + sizeof(int64_t));
  }
  *bytes = off;
  return l;
}

// Bytes of device workspace LaunchTopK needs.
inline size_t TopKWorkspaceBytes(int64_t batch, int64_t num_items, int64_t k, bool prefilter) {
  size_t bytes = 0;
  const int64_t k_eff = std::min(k, num_items);
  ComputeLayout(batch, num_items, std::max<int64_t>(k_eff, 1), prefilter, &bytes);
  return bytes;
}

// ---------------------------------------------------------------------------
// Item loads.
__device__ __forceinline__ uint4 LoadStream16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
template <typename T>
__device__ __forceinline__ float ToFloat(T v) {
  return static_cast<float>(v);
}
template <>
__device__ __forceinline__ float ToFloat<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

__device__ __forceinline__ void Mma16816(float* c, uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t PackHalf2(float a, float b) {
  __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}

// ---------------------------------------------------------------------------
// Scan parameters shared by the scan kernels.
struct ScanArgs {
  const float* queries;
  const void* items;
  const int32_t* mask;
  int64_t batch, num_items, dim, mask_words;
  int64_t tile_begin, tile_end;  // segment, in 32-row (or 32-position) tiles
  const int32_t* ids;            // prefilter: compacted row ids
  const int64_t* total;          // prefilter: number of ids
  int64_t max_union;             // prefilter: above this many ids, stream all tiles
  uint64_t* buf;
  const uint64_t* thr;
  int32_t* cnt;
  int32_t* flags;
  int64_t cap;
};

// Per-lane query-membership bits of the lane's row for queries q0..q0+nq-1
// (nq <= 64). `row` < 0 means no row.
__device__ __forceinline__ uint64_t RowQueryBits(const ScanArgs& a, int64_t q0, int nq,
                                                 int64_t row, bool same_word) {
  const int lane = threadIdx.x & 31;
  if (nq <= 4) {
    uint64_t r = 0;
    if (row >= 0) {
      const int64_t w = row >> 5;
      for (int q = 0; q < nq; ++q) {
        const uint32_t m = static_cast<uint32_t>(__ldg(a.mask + (q0 + q) * a.mask_words + w));
        r |= static_cast<uint64_t>((m >> (row & 31)) & 1u) << q;
      }
    }
    return r;
  }
  uint64_t result = 0;
  uint32_t pending = __ballot_sync(0xffffffffu, row >= 0);
  while (pending != 0u) {
    const int leader = __ffs(pending) - 1;
    const int64_t w = __shfl_sync(0xffffffffu, row, leader) >> 5;
    const uint32_t lo = lane < nq ? static_cast<uint32_t>(__ldg(a.mask + (q0 + lane) * a.mask_words + w)) : 0u;
    const uint32_t hi = lane + 32 < nq ? static_cast<uint32_t>(__ldg(a.mask + (q0 + lane + 32) * a.mask_words + w)) : 0u;
    const bool mine = row >= 0 && (row >> 5) == w;
    const int pos = static_cast<int>(row & 31);
    const bool any_hi = __any_sync(0xffffffffu, hi != 0u);
#pragma unroll
    for (int p = 0; p < 32; ++p) {
      const uint32_t blo = __ballot_sync(0xffffffffu, (lo >> p) & 1u);
      uint32_t bhi = 0;
      if (any_hi) bhi = __ballot_sync(0xffffffffu, (hi >> p) & 1u);
      if (mine && pos == p) result = (static_cast<uint64_t>(bhi) << 32) | blo;
    }
    pending &= ~__ballot_sync(0xffffffffu, mine);
    if (same_word) break;
  }
  return result;
}

// Appends one candidate if it passes the query's threshold.
__device__ __forceinline__ void Offer(const ScanArgs& a, int64_t q, float score, int64_t row,
                                      const uint64_t* thr_s, int ql) {
  const uint64_t key = select_gpu::FloatKey(score, row);
  if (key >= thr_s[ql]) {
    const int32_t slot = atomicAdd(a.cnt + q, 1);
    if (slot < a.cap) {
      a.buf[q * a.cap + slot] = key;
    } else {
      a.flags[0] = 1;  // overflow: the launcher reruns in safe mode
    }
  }
}

// Row id of `lane` in tile `tile`, -1 when none.
__device__ __forceinline__ int64_t TileRow(const ScanArgs& a, int64_t tile, int64_t total,
                                           int lane, bool by_ids) {
  const int64_t pos = tile * 32 + lane;
  if (by_ids) return pos < total ? static_cast<int64_t>(__ldg(a.ids + pos)) : -1;
  return pos < a.num_items ? pos : -1;
}

// Whether a prefilter scan visits the compacted ids (else every tile), and how
// many rows / ids it visits.
template <bool kPrefilter>
__device__ __forceinline__ bool ScanByIds(const ScanArgs& a, int64_t* total) {
  *total = a.num_items;
  if (!kPrefilter) return false;
  const int64_t t = *a.total;
  if (t > a.max_union) return false;
  *total = t;
  return true;
}

// Tensor-core scan: fp16 items, dim % 32 == 0, dim <= 512. NT = n-tiles of 8 queries.
template <int NT, bool kPrefilter>
__global__ void __launch_bounds__(kScanWarps * 32, NT >= 8 ? 1 : 2)
    ScanMmaKernel(ScanArgs a) {
  extern __shared__ uint4 smem_q[];  // [2][NT][dim/32][32] (hi, lo)
  __shared__ uint64_t thr_s[kQueryGroup];
  __shared__ float inv_s[kQueryGroup];
  __shared__ float scale_s[kQueryGroup];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kQueryGroup;
  const int nq = static_cast<int>(min(static_cast<int64_t>(NT * 8), a.batch - q0));
  const int nc = static_cast<int>(a.dim / 32);
  int64_t total = 0;
  const bool by_ids = ScanByIds<kPrefilter>(a, &total);
  const int64_t tiles_all = (total + 31) / 32;
  const int64_t t_end = min(a.tile_end, tiles_all);
  if (a.tile_begin >= t_end) return;

  // Exact power-of-two scaling per query so hi/lo fp16 parts stay in range.
  for (int ql = warp; ql < NT * 8; ql += kScanWarps) {
    float amax = 0.f;
    if (ql < nq) {
      for (int64_t j = lane; j < a.dim; j += 32) amax = fmaxf(amax, fabsf(a.queries[(q0 + ql) * a.dim + j]));
    }
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    if (lane == 0) {
      int e = 0;
      if (amax > 0.f && amax < 3.0e38f) e = 14 - ilogbf(amax);
      scale_s[ql] = ldexpf(1.f, e);
      inv_s[ql] = ldexpf(1.f, -e);
      if (ql < nq) thr_s[ql] = a.thr[q0 + ql];
    }
  }
  __syncthreads();
  const int frags = NT * nc * 32;
  for (int f = threadIdx.x; f < frags; f += blockDim.x) {
    const int fl = f & 31, c = (f >> 5) % nc, nt = (f >> 5) / nc;
    const int ql = nt * 8 + (fl >> 2);
    const int64_t base = (q0 + ql) * a.dim + c * 32 + (fl & 3) * 8;
    float v[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) v[t] = ql < nq ? a.queries[base + t] * scale_s[ql] : 0.f;
    float r[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) r[t] = v[t] - __half2float(__float2half_rn(v[t]));
    smem_q[f] = make_uint4(PackHalf2(v[0], v[1]), PackHalf2(v[2], v[3]), PackHalf2(v[4], v[5]),
                           PackHalf2(v[6], v[7]));
    smem_q[frags + f] = make_uint4(PackHalf2(r[0], r[1]), PackHalf2(r[2], r[3]),
                                   PackHalf2(r[4], r[5]), PackHalf2(r[6], r[7]));
  }
  __syncthreads();

  const __half* items = static_cast<const __half*>(a.items);
  // Masked: a warp takes chunks of up to 32 consecutive tiles and finds the
  // non-empty ones with one coalesced load of mask words per query (ballot).
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * kScanWarps;
  const int cw = by_ids ? 1
                        : static_cast<int>(max(static_cast<int64_t>(1),
                                               min(static_cast<int64_t>(32),
                                                   (t_end - a.tile_begin) / nwarps)));
  for (int64_t c0 = a.tile_begin + (static_cast<int64_t>(blockIdx.x) * kScanWarps + warp) * cw;
       c0 < t_end; c0 += nwarps * cw) {
   uint32_t live = 1u;
   if (!by_ids) {
     const int64_t t = c0 + lane;
     bool nz = false;
     if (lane < cw && t < t_end) {
       for (int q = 0; q < nq && !nz; ++q) nz = __ldg(a.mask + (q0 + q) * a.mask_words + t) != 0;
     }
     live = __ballot_sync(0xffffffffu, nz);
   }
   while (live != 0u) {
    const int64_t tile = c0 + (__ffs(live) - 1);
    live &= live - 1u;
    const int64_t myrow = TileRow(a, tile, total, lane, by_ids);
    const uint64_t rq = RowQueryBits(a, q0, nq, myrow, !by_ids);
    if (!__any_sync(0xffffffffu, rq != 0)) continue;
    // Rows of this thread's fragments: r = mt*16 + h*8 + g.
    int64_t rrow[2][2];
    uint64_t rbits[2][2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int src = mt * 16 + h * 8 + g;
        rrow[mt][h] = __shfl_sync(0xffffffffu, myrow, src);
        rbits[mt][h] = __shfl_sync(0xffffffffu, rq, src);
      }
    constexpr int kSets = NT <= 2 ? 2 : 1;  // separate hi/lo accumulators: shorter mma chains
    float acc[kSets][2][NT][4];
#pragma unroll
    for (int s = 0; s < kSets; ++s)
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int t = 0; t < 4; ++t) acc[s][mt][nt][t] = 0.f;

    for (int cg = 0; cg < nc; cg += 4) {
      uint4 A[2][2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            if (rbits[mt][h] != 0 && cg + c < nc) {
              A[mt][h][c] = LoadStream16(items + rrow[mt][h] * a.dim + (cg + c) * 32 + tig * 8);
            } else {
              A[mt][h][c] = make_uint4(0, 0, 0, 0);
            }
          }
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (cg + c < nc) {
#pragma unroll
          for (int part = 0; part < 2; ++part) {  // 0: hi, 1: lo
#pragma unroll
            for (int half = 0; half < 2; ++half) {  // k 0-15 / 16-31 of the 32-chunk
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) {
                const int f = (nt * nc + cg + c) * 32 + lane;
                const uint4 qv = smem_q[part * frags + f];
                const uint32_t b0 = half ? qv.z : qv.x, b1 = half ? qv.w : qv.y;
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                  const uint4& a0 = A[mt][0][c];
                  const uint4& a1 = A[mt][1][c];
                  Mma16816(acc[kSets == 2 ? part : 0][mt][nt], half ? a0.z : a0.x, half ? a1.z : a1.x,
                           half ? a0.w : a0.y, half ? a1.w : a1.y, b0, b1);
                }
              }
            }
          }
        }
      }
    }
    if (kSets == 2) {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int t = 0; t < 4; ++t) acc[0][mt][nt][t] += acc[kSets - 1][mt][nt][t];
    }
    // Candidates: acc[mt][nt][h*2+j] = row (mt,h), query nt*8 + 2*tig + j.
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if (rbits[mt][h] == 0) continue;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int ql = nt * 8 + 2 * tig + j;
            if (ql < nq && ((rbits[mt][h] >> ql) & 1u)) {
              Offer(a, q0 + ql, acc[0][mt][nt][h * 2 + j] * inv_s[ql], rrow[mt][h], thr_s, ql);
            }
          }
      }
   }
  }
}

// CUDA-core scan: any item type and dim. One lane per row of the tile.
template <typename T, bool kPrefilter>
__global__ void __launch_bounds__(kScanWarps * 32)
    ScanGenericKernel(ScanArgs a) {
  extern __shared__ float smem_f[];  // [64][dim]
  __shared__ uint64_t thr_s[kQueryGroup];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kQueryGroup;
  const int nq = static_cast<int>(min(static_cast<int64_t>(kQueryGroup), a.batch - q0));
  int64_t total = 0;
  const bool by_ids = ScanByIds<kPrefilter>(a, &total);
  const int64_t t_end = min(a.tile_end, (total + 31) / 32);
  if (a.tile_begin >= t_end) return;
  for (int64_t i = threadIdx.x; i < nq * a.dim; i += blockDim.x) smem_f[i] = a.queries[q0 * a.dim + i];
  for (int i = threadIdx.x; i < nq; i += blockDim.x) thr_s[i] = a.thr[q0 + i];
  __syncthreads();
  const T* items = static_cast<const T*>(a.items);
  const int64_t wstride = static_cast<int64_t>(gridDim.x) * kScanWarps;
  for (int64_t tile = a.tile_begin + static_cast<int64_t>(blockIdx.x) * kScanWarps + warp;
       tile < t_end; tile += wstride) {
    const int64_t row = TileRow(a, tile, total, lane, by_ids);
    const uint64_t rq = RowQueryBits(a, q0, nq, row, !by_ids);
    if (!__any_sync(0xffffffffu, rq != 0)) continue;
    if (rq == 0) continue;
    float acc[kQueryGroup];
#pragma unroll
    for (int q = 0; q < kQueryGroup; ++q) acc[q] = 0.f;
    const T* item = items + row * a.dim;
    for (int64_t j = 0; j < a.dim; ++j) {
      const float x = ToFloat<T>(item[j]);
#pragma unroll
      for (int q = 0; q < kQueryGroup; ++q) {
        if (q < nq) acc[q] = fmaf(smem_f[q * a.dim + j], x, acc[q]);
      }
    }
#pragma unroll
    for (int q = 0; q < kQueryGroup; ++q) {
      if (q < nq && ((rq >> q) & 1u)) Offer(a, q0 + q, acc[q], row, thr_s, q);
    }
  }
}

// ---------------------------------------------------------------------------
// Prefilter compaction: union words, per-block popcount sums, scan, ids.
__global__ void UnionCountKernel(const int32_t* __restrict__ mask, int64_t batch, int64_t words,
                                 uint32_t* __restrict__ uni, int64_t* __restrict__ sums) {
  __shared__ int64_t red[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kUnionWordsPerBlock;
  int64_t local = 0;
  for (int64_t i = threadIdx.x; i < kUnionWordsPerBlock; i += blockDim.x) {
    const int64_t w = base + i;
    if (w >= words) break;
    uint32_t u = 0;
    for (int64_t b = 0; b < batch; ++b) u |= static_cast<uint32_t>(__ldg(mask + b * words + w));
    uni[w] = u;
    local += __popc(u);
  }
  for (int o = 16; o > 0; o >>= 1) local += __shfl_xor_sync(0xffffffffu, local, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = local;
  __syncthreads();
  if (threadIdx.x == 0) {
    int64_t s = 0;
    for (int i = 0; i < static_cast<int>(blockDim.x >> 5); ++i) s += red[i];
    sums[blockIdx.x] = s;
  }
}

// Exclusive scan of the per-block sums, one block of 1024 threads.
__global__ void __launch_bounds__(1024) ScanSumsKernel(int64_t* sums, int64_t blocks, int64_t* total) {
  __shared__ int64_t warp_tot[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t carry = 0;
  for (int64_t c = 0; c < blocks; c += blockDim.x) {
    const int64_t i = c + threadIdx.x;
    const int64_t v = i < blocks ? sums[i] : 0;
    int64_t incl = v;
    for (int o = 1; o < 32; o <<= 1) {
      const int64_t u = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += u;
    }
    if (lane == 31) warp_tot[warp] = incl;
    __syncthreads();
    int64_t before = 0, all = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) {
      if (w < warp) before += warp_tot[w];
      all += warp_tot[w];
    }
    if (i < blocks) sums[i] = carry + before + incl - v;
    carry += all;
    __syncthreads();
  }
  if (threadIdx.x == 0) *total = carry;
}

__global__ void WriteIdsKernel(const uint32_t* __restrict__ uni, int64_t words,
                               const int64_t* __restrict__ sums, const int64_t* __restrict__ total,
                               int64_t max_union, int32_t* __restrict__ ids) {
  __shared__ int32_t warp_tot[32];
  if (*total > max_union) return;  // the scan streams all tiles instead
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kUnionWordsPerBlock;
  int64_t offset = sums[blockIdx.x];
  for (int64_t c = 0; c < kUnionWordsPerBlock; c += blockDim.x) {
    const int64_t w = base + c + threadIdx.x;
    const uint32_t u = (w < words && c + threadIdx.x < kUnionWordsPerBlock) ? uni[w] : 0u;
    const int n = __popc(u);
    int incl = n;
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    if (lane == 31) warp_tot[warp] = incl;
    __syncthreads();
    int before = 0, all = 0;
    for (int i = 0; i < nw; ++i) {
      if (i < warp) before += warp_tot[i];
      all += warp_tot[i];
    }
    int64_t pos = offset + before + incl - n;
    uint32_t m = u;
    while (m != 0u) {
      const int p = __ffs(m) - 1;
      m &= m - 1u;
      ids[pos++] = static_cast<int32_t>(w * 32 + p);
    }
    offset += all;
    __syncthreads();
  }
}

// ---------------------------------------------------------------------------
// Launcher.
template <typename T, bool kPrefilter>
cudaError_t LaunchScanOnStream(const ScanArgs& args, int sms, int64_t groups, bool use_mma,
                               cudaStream_t stream) {
  const int64_t tiles = args.tile_end - args.tile_begin;
  if (tiles <= 0) return cudaSuccess;
  const int64_t nc = args.dim / 32;
  if (use_mma) {
    const int64_t group_q = std::min<int64_t>(args.batch, kQueryGroup);
    const int nt = group_q <= 8 ? 1 : group_q <= 16 ? 2 : group_q <= 32 ? 4 : 8;
    const size_t smem = sizeof(uint4) * 2 * nt * nc * 32;
    const int64_t blocks = std::min<int64_t>((tiles + kScanWarps - 1) / kScanWarps, 2LL * sms);
    dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(groups));
    switch (nt) {
#define LINR_LAUNCH_MMA(NTV)                                                                   \
  case NTV:                                                                                    \
    cudaFuncSetAttribute(ScanMmaKernel<NTV, kPrefilter>,                                       \
                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)); \
    ScanMmaKernel<NTV, kPrefilter><<<grid, kScanWarps * 32, smem, stream>>>(args);             \
    break;
      LINR_LAUNCH_MMA(1)
      LINR_LAUNCH_MMA(2)
      LINR_LAUNCH_MMA(4)
      LINR_LAUNCH_MMA(8)
#undef LINR_LAUNCH_MMA
    }
    return cudaGetLastError();
  }
  const size_t smem = sizeof(float) * kQueryGroup * args.dim;
  const int64_t blocks = std::min<int64_t>((tiles + kScanWarps - 1) / kScanWarps, 4LL * sms);
  dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(groups));
  cudaFuncSetAttribute(ScanGenericKernel<T, kPrefilter>,
                       cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  ScanGenericKernel<T, kPrefilter><<<grid, kScanWarps * 32, smem, stream>>>(args);
  return cudaGetLastError();
}

// Runs one op. T is float, __half or __nv_bfloat16. All pointers are device
// memory except none; `workspace` holds TopKWorkspaceBytes(...) bytes.
// Outputs: scores [B, k], indices [B, k], count [B]. Returns
// cudaErrorInvalidValue for min(k, N) > kMaxK or unsupported shapes.
// Checks for candidate-buffer overflow at the end (one stream
// synchronisation) and reruns in safe mode if needed. With `prefilter`, the
// rows are gathered by compacted id when at most max_union_rate * num_items
// pass some query of the batch, else streamed (decided on the device).
template <typename T>
cudaError_t LaunchTopK(const float* queries, const T* items, const int32_t* mask, int64_t batch,
                       int64_t num_items, int64_t dim, int64_t k, bool prefilter, void* workspace,
                       size_t workspace_bytes, float* out_scores, int32_t* out_idx,
                       int32_t* out_count, cudaStream_t stream, float max_union_rate = 1.0f) {
  if (batch <= 0 || k <= 0) return k <= 0 ? cudaErrorInvalidValue : cudaSuccess;
  const int64_t k_eff = std::min(k, num_items);
  const TopKOutputs out{out_scores, out_idx, out_count};
  if (k_eff <= 0) return select_gpu::LaunchFillEmpty(batch, k, out, stream);
  if (k_eff > kMaxK) return cudaErrorInvalidValue;
  size_t need = 0;
  const TopKLayout lay = ComputeLayout(batch, num_items, k_eff, prefilter, &need);
  if (workspace_bytes < need) return cudaErrorInvalidValue;
  char* ws = static_cast<char*>(workspace);
  const select_gpu::SelectState<int32_t> st = select_gpu::SelectStateAt<int32_t>(workspace, lay);
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t words = (num_items + 31) / 32;
  const int64_t groups = (batch + kQueryGroup - 1) / kQueryGroup;
  const bool use_mma = std::is_same<T, __half>::value && dim % 32 == 0 && dim > 0 && dim <= 512;
  if (!use_mma && dim > 12 * 1024) return cudaErrorInvalidValue;  // shared-memory limit
  cudaError_t err;

  ScanArgs args;
  args.queries = queries;
  args.items = items;
  args.mask = mask;
  args.batch = batch;
  args.num_items = num_items;
  args.dim = dim;
  args.mask_words = words;
  args.ids = nullptr;
  args.total = nullptr;
  args.max_union = static_cast<int64_t>(static_cast<double>(max_union_rate) *
                                        static_cast<double>(num_items));
  args.buf = st.buf;
  args.thr = st.thr;
  args.cnt = st.cnt;
  args.flags = st.flags;
  args.cap = st.cap;

  if (prefilter) {
    uint32_t* uni = reinterpret_cast<uint32_t*>(ws + lay.uni);
    int32_t* ids = reinterpret_cast<int32_t*>(ws + lay.ids);
    int64_t* sums = reinterpret_cast<int64_t*>(ws + lay.sums);
    int64_t* total = reinterpret_cast<int64_t*>(ws + lay.total);
    const int64_t blocks = (words + kUnionWordsPerBlock - 1) / kUnionWordsPerBlock;
    UnionCountKernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(mask, batch, words, uni, sums);
    ScanSumsKernel<<<1, 1024, 0, stream>>>(sums, blocks, total);
    WriteIdsKernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(uni, words, sums, total,
                                                                      args.max_union, ids);
    if ((err = cudaGetLastError()) != cudaSuccess) return err;
    args.ids = ids;
    args.total = total;
  }

  const int64_t tiles = words;  // upper bound for prefilter positions too
  return select_gpu::RunSegmentedSelect<int32_t, FloatKeyCodec>(
      st, batch, tiles, k_eff, k, out, stream, [&](int64_t begin, int64_t end) {
        args.tile_begin = begin;
        args.tile_end = end;
        return prefilter ? LaunchScanOnStream<T, true>(args, sms, groups, use_mma, stream)
                         : LaunchScanOnStream<T, false>(args, sms, groups, use_mma, stream);
      });
}

}  // namespace gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_TOPK_TOPK_GPU_CU_H_
