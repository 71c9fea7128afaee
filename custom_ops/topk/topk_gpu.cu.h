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
// Each streamed row is scored against the queries of its block (up to 256 for
// the tensor-core scan, 64 for the CUDA-core one; items read once per block).
// fp16 items with d % 32 == 0 and d <= 256 are screened on tensor cores
// (mma.sync m16n8k16, fp32 accumulate, the query rounded to fp16), other
// types/shapes by an fp32 CUDA-core dot in another order. A screen comes with
// a rigorous error bound, so a pair (row, query) is dropped only when its
// exact score certainly ranks below the query's threshold; the others are
// queued and rescored by RescoreKernel in the CPU kernel's canonical fp32
// order (topk_cpu.h), which gives the key. Scores, indices and counts are
// therefore bit-identical to the CPU op for every type and shape.
//
// Selection (k up to kMaxK) is two-stage, in select/select_gpu.cu.h (shared
// with the Hamming kernel). Stage 1: after a segment's scan, each rescored
// candidate is appended to the query's buffer (capacity `cap`) when its key
// is >= the query's current threshold. Rows are streamed in segments of growing size; after each
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
  size_t pend = 0, pcnt = 0;  // pairs to rescore exactly: [batch][cap] rows, [batch] counts
  size_t uni = 0, ids = 0, sums = 0, total = 0;
};

constexpr int64_t kUnionWordsPerBlock = 2048;

using select_gpu::AlignUp;

inline TopKLayout ComputeLayout(int64_t batch, int64_t num_items, int64_t k_eff, bool prefilter,
                                size_t* bytes) {
  TopKLayout l;
  size_t off = select_gpu::LayoutSelect(batch, k_eff, &l);
  l.pend = off; off = AlignUp(off + sizeof(int32_t) * batch * l.cap);
  l.pcnt = off; off = AlignUp(off + sizeof(uint32_t) * batch);
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
  int32_t* pend;   // [batch][cap] rows of pairs that may reach the threshold
  uint32_t* pcnt;  // [batch]
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

// Admission of an approximate score `approx` (with error at most `bound`
// against the canonical score, both in the same units as `thr`): false only
// when the canonical score is certainly below the threshold's score. NaN
// anywhere admits (the canonical score decides).
__device__ __forceinline__ bool MayReach(float approx, float bound, float thr) {
  return !(approx + bound < thr);
}

// A threshold key's score as a float (the smallest key, 0, and every key below
// the -inf key read as -inf).
__device__ __forceinline__ float ThresholdScore(uint64_t key) {
  return (key >> 32) <= 0x007fffffull ? -__int_as_float(0x7f800000) : FloatKeyCodec::Score(key);
}

// Queues the pair (q, row) for exact rescoring (RescoreKernel, after the
// scan kernel of the segment). A full queue sets the overflow flag: the
// launcher reruns in safe mode, where a segment cannot admit more than `cap`.
__device__ __forceinline__ void Admit(const ScanArgs& a, int64_t q, int64_t row) {
  const uint32_t slot = atomicAdd(a.pcnt + q, 1u);
  if (slot < static_cast<uint32_t>(a.cap)) {
    a.pend[q * a.cap + slot] = static_cast<int32_t>(row);
  } else {
    a.flags[0] = 1;
  }
}

// Exact rescoring of the queued pairs of one segment: 8 lanes per pair, lane
// t summing the canonical partial sum s[t] (topk_cpu.h CanonicalDot's order:
// s[t] = fma over j = t, t + 8, ..., explicit _rn so nothing is contracted or
// reassociated), reduced by
// shuffles in the canonical tree; a key >= the query's threshold is appended
// to the query's candidate buffer. Grid (x, batch); the launcher resets the
// counts afterwards.
template <typename T>
__global__ void __launch_bounds__(256) RescoreKernel(ScanArgs a) {
  const int64_t q = blockIdx.y;
  const int t = threadIdx.x & 7;
  const int64_t n = min(static_cast<int64_t>(a.pcnt[q]), a.cap);
  const uint64_t thr = a.thr[q];
  const float* query = a.queries + q * a.dim;
  const T* items = static_cast<const T*>(a.items);
  const int64_t dim_padded = (a.dim + 7) & ~static_cast<int64_t>(7);
  const int64_t slots = static_cast<int64_t>(gridDim.x) * (blockDim.x / 8);
  // A uniform trip count per warp (shuffles): slots past n do no work.
  const int64_t warp_first = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 8) +
                             (threadIdx.x / 32) * 4;
  for (int64_t i0 = warp_first; i0 < n; i0 += slots) {
    const int64_t i = i0 + (threadIdx.x & 31) / 8;
    const bool live = i < n;
    const int64_t row = live ? static_cast<int64_t>(a.pend[q * a.cap + i]) : 0;
    const T* x = items + row * a.dim;
    float acc = 0.f;
    for (int64_t j = t; j < dim_padded; j += 8) {
      const bool in = live && j < a.dim;
      acc = __fmaf_rn(in ? __ldg(query + j) : 0.f, in ? ToFloat<T>(x[j]) : 0.f, acc);
    }
    acc = __fadd_rn(acc, __shfl_xor_sync(0xffffffffu, acc, 1));
    acc = __fadd_rn(acc, __shfl_xor_sync(0xffffffffu, acc, 2));
    acc = __fadd_rn(acc, __shfl_xor_sync(0xffffffffu, acc, 4));
    if (live && t == 0) {
      const uint64_t key = select_gpu::FloatKey(acc, row);
      if (key >= thr) {
        const int32_t slot = atomicAdd(a.cnt + q, 1);
        if (slot < a.cap) {
          a.buf[q * a.cap + slot] = key;
        } else {
          a.flags[0] = 1;
        }
      }
    }
  }
}

template <typename T>
cudaError_t LaunchRescore(const ScanArgs& a, int sms, cudaStream_t stream) {
  const int64_t per_query = std::max<int64_t>(1, std::min<int64_t>(64, 16LL * sms / a.batch));
  dim3 grid(static_cast<unsigned>(per_query), static_cast<unsigned>(a.batch));
  RescoreKernel<T><<<grid, 256, 0, stream>>>(a);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  return cudaMemsetAsync(a.pcnt, 0, sizeof(uint32_t) * a.batch, stream);
}

// ---------------------------------------------------------------------------
// Tensor-core scan: fp16 items, dim % 32 == 0, dim <= kMmaMaxDim.
//
// Scores are screened on tensor cores and exact on CUDA cores. Per query the
// fp32 query v = q * 2^e (exact power-of-two scaling, max |v| near 2^14) is
// rounded to fp16 hi; mma.sync m16n8k16 (fp32 accumulate) gives
// a = sum hi_j x_j. Against the canonical fp32 score c (topk_cpu.h), in
// scaled units, |a - c 2^e| <= (||v - hi|| + 2^-12 ||hi||) ||x||: the first
// term is the rounding of the query (Cauchy-Schwarz), the second covers the
// fp32 accumulation of both sums (at most ~d 2^-23 relative each, d <= 256).
// The bound is inflated by 1 %, ||x|| is computed from the fragments each
// thread already holds. A pair (row, query) whose mask bit is set and whose
// a + bound reaches the query's threshold is rescored exactly and offered
// with the exact key (queued, then RescoreKernel); every other pair is
// certainly below the threshold. So
// the outputs are bit-identical to the CPU op, and after the first segment
// (where the threshold is -inf) only about k ln(N) pairs per query are
// rescored.
//
// Work: a block takes up to kMmaGroups groups of 64 queries (their fp16
// fragments stay in shared memory) and a warp streams half-tiles of 16 rows
// (of a 32-row mask word); every half-tile's rows are read from HBM once per
// block and scored against all its query groups. Rows reach shared memory by
// cp.async into a per-warp ring of 2 or 3 buffers, so the next half-tiles'
// loads are in flight while the current one is on the tensor cores; rows no query of the
// block wants are zero-filled without a load. Each thread reads back exactly
// the 16-byte pieces it copied, in the layout of its mma A fragments (k
// permuted within each 32-wide chunk, the same permutation as the query
// fragments), so the shared-memory reads are conflict-free.
constexpr int kMmaMaxDim = 256;
// Segment growth cap of the selection: shorter segments admit fewer pairs to
// rescore (H200, 100M, B = 64: 13.1 ms, against 15.5 ms with select_gpu's
// default growth; bench/results/tf_gpu_runs/harness_run8_topk_variants.txt).
constexpr int64_t kMaxGrowth = 16;
constexpr int kMmaGroups = 4;  // 64-query groups per block (shared memory permitting)
constexpr int kMmaMaxBlockQueries = kMmaGroups * kQueryGroup;

__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, bool load) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int src_size = load ? 16 : 0;  // 0: zero-fill, nothing is read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem),
               "r"(src_size));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most stages - 1 groups are pending: of the `stages` groups
// committed last, the oldest is here.
__device__ __forceinline__ void CpAsyncWaitOldest(int stages) {
  if (stages == 3) {
    asm volatile("cp.async.wait_group 2;\n" ::);
  } else {
    asm volatile("cp.async.wait_group 1;\n" ::);
  }
}

// Shared memory of ScanMmaKernel: query fragments [groups][NT][nc][32] uint4,
// then per warp `stages` (2 or 3) buffers of [nc][2][32] uint4.
inline size_t MmaSmemBytes(int nt, int64_t nc, int groups, int stages) {
  return sizeof(uint4) * (static_cast<size_t>(groups) * nt * nc * 32 +
                          static_cast<size_t>(kScanWarps) * stages * nc * 2 * 32);
}

// One half-tile of the scan: 16 rows (tile * 32 + mt * 16 ...), the union
// word of its tile (masked mode: bit r = row r of the tile is wanted by some
// query of the block; prefilter mode: positions < total).
struct HalfTile {
  int64_t tile;
  int mt;
  uint32_t want;
};

// Walks the half-tiles of a warp in order: chunks of up to 32 tiles, the
// non-empty ones found by one ballot of mask words, half-tiles with no wanted
// row skipped.
template <bool kPrefilter>
struct HalfTileWalk {
  const ScanArgs* a;
  int64_t q0, nqb, total, t_end, c0, step;
  int cw;
  bool by_ids;
  uint32_t live;
  HalfTile cur;
  bool pending_second;

  __device__ void Init(const ScanArgs& args, int64_t qbegin, int64_t nq, int64_t tot,
                       int64_t tend, bool ids, int64_t first_chunk, int64_t chunk_step,
                       int chunk_tiles) {
    a = &args;
    q0 = qbegin;
    nqb = nq;
    total = tot;
    t_end = tend;
    by_ids = ids;
    c0 = first_chunk;
    step = chunk_step;
    cw = chunk_tiles;
    live = c0 < t_end ? ChunkLive() : 0u;
    pending_second = false;
  }

  // Tiles of chunk c0 with any passing item for some query (lane = tile).
  __device__ uint32_t ChunkLive() const {
    const int lane = threadIdx.x & 31;
    const int64_t t = c0 + lane;
    bool nz = lane < cw && t < t_end;
    if (nz && !by_ids) {
      nz = false;
      for (int64_t q = 0; q < nqb && !nz; ++q) {
        nz = __ldg(a->mask + (q0 + q) * a->mask_words + t) != 0;
      }
    }
    return __ballot_sync(0xffffffffu, nz);
  }

  // Union over the block's queries of the tile's mask word (or the valid
  // positions of a compacted tile).
  __device__ uint32_t TileWant(int64_t tile) const {
    const int lane = threadIdx.x & 31;
    if (by_ids) {
      const int64_t left = total - tile * 32;
      return left >= 32 ? 0xffffffffu : (1u << left) - 1u;
    }
    uint32_t u = 0;
    for (int64_t q = lane; q < nqb; q += 32) {
      u |= static_cast<uint32_t>(__ldg(a->mask + (q0 + q) * a->mask_words + tile));
    }
    u = __reduce_or_sync(0xffffffffu, u);
    const int64_t left = a->num_items - tile * 32;
    return left >= 32 ? u : u & ((1u << left) - 1u);
  }

  __device__ bool Next(HalfTile* out) {
    if (pending_second) {
      pending_second = false;
      cur.mt = 1;
      *out = cur;
      return true;
    }
    while (true) {
      while (live == 0u) {
        c0 += step;
        if (c0 >= t_end) return false;
        live = ChunkLive();
      }
      const int64_t tile = c0 + (__ffs(live) - 1);
      live &= live - 1u;
      const uint32_t want = TileWant(tile);
      if (want == 0u) continue;
      cur.tile = tile;
      cur.want = want;
      const bool lo = (want & 0xffffu) != 0u, hi = (want >> 16) != 0u;
      cur.mt = lo ? 0 : 1;
      pending_second = lo && hi;
      *out = cur;
      return true;
    }
  }
};

template <int NT, bool kPrefilter>
__global__ void __launch_bounds__(kScanWarps * 32, 2) ScanMmaKernel(ScanArgs a, int groups, int stages) {
  extern __shared__ uint4 smem[];
  __shared__ float thr_s[kMmaMaxBlockQueries];    // threshold score, scaled
  __shared__ float bound_s[kMmaMaxBlockQueries];  // error bound per unit of ||x||, scaled
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int nc = static_cast<int>(a.dim / 32);
  const int64_t qb = static_cast<int64_t>(groups) * NT * 8;  // queries per block
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * qb;
  const int64_t nqb = min(qb, a.batch - q0);
  int64_t total = 0;
  const bool by_ids = ScanByIds<kPrefilter>(a, &total);
  const int64_t t_end = min(a.tile_end, (total + 31) / 32);
  if (a.tile_begin >= t_end) return;
  uint4* qfrag = smem;                                           // [groups][NT][nc][32]
  uint4* stage = smem + static_cast<size_t>(groups) * NT * nc * 32 +
                 static_cast<size_t>(warp) * stages * nc * 2 * 32;  // [stages][nc][2][32]

  // Per query: scale, fp16 hi fragments, bound and threshold (scaled).
  for (int64_t ql = warp; ql < qb; ql += kScanWarps) {
    const bool valid = ql < nqb;
    const float* qv = a.queries + (q0 + ql) * a.dim;
    float amax = 0.f;
    if (valid) {
      for (int64_t j = lane; j < a.dim; j += 32) amax = fmaxf(amax, fabsf(qv[j]));
    }
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    int e = 0;
    if (amax > 0.f && amax < 3.0e38f) e = 14 - ilogbf(amax);
    const float scale = ldexpf(1.f, e);
    float lo2 = 0.f, hi2 = 0.f;
    if (valid) {
      for (int64_t j = lane; j < a.dim; j += 32) {
        const float v = qv[j] * scale;
        const float h = __half2float(__float2half_rn(v));
        lo2 = fmaf(v - h, v - h, lo2);
        hi2 = fmaf(h, h, hi2);
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      lo2 += __shfl_xor_sync(0xffffffffu, lo2, o);
      hi2 += __shfl_xor_sync(0xffffffffu, hi2, o);
    }
    const int gi = static_cast<int>(ql / (NT * 8));
    const int qi = static_cast<int>(ql % (NT * 8));
    const int nt = qi / 8;
    // Fragments: lane f of (nt, c) holds query nt*8 + f/4, dims c*32 + (f%4)*8 .. +8.
    if ((lane >> 2) == (qi & 7)) {
      for (int c = 0; c < nc; ++c) {
        const int64_t base = c * 32 + tig * 8;
        float v[8];
#pragma unroll
        for (int t = 0; t < 8; ++t) v[t] = valid ? qv[base + t] * scale : 0.f;
        qfrag[((static_cast<size_t>(gi) * NT + nt) * nc + c) * 32 + lane] =
            make_uint4(PackHalf2(v[0], v[1]), PackHalf2(v[2], v[3]), PackHalf2(v[4], v[5]),
                       PackHalf2(v[6], v[7]));
      }
    }
    if (lane == 0) {
      const uint64_t tk = valid ? a.thr[q0 + ql] : ~0ull;
      thr_s[ql] = valid ? ThresholdScore(tk) * scale : __int_as_float(0x7f800000);
      bound_s[ql] = (sqrtf(lo2) + ldexpf(sqrtf(hi2), -12)) * 1.01f;
    }
  }
  __syncthreads();

  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * kScanWarps;
  const int cw = static_cast<int>(
      max(static_cast<int64_t>(1),
          min(static_cast<int64_t>(32), (t_end - a.tile_begin + nwarps - 1) / nwarps)));
  HalfTileWalk<kPrefilter> walk;
  walk.Init(a, q0, nqb, total, t_end, by_ids,
            a.tile_begin + (static_cast<int64_t>(blockIdx.x) * kScanWarps + warp) * cw,
            nwarps * cw, cw);
  const __half* items = static_cast<const __half*>(a.items);

  // Row of this thread's fragment h (0: g, 1: g + 8) in half-tile ht, -1 if
  // none or wanted by no query of the block.
  auto row_of = [&](const HalfTile& ht, int h) -> int64_t {
    const int r = ht.mt * 16 + h * 8 + g;
    if (!((ht.want >> r) & 1u)) return -1;
    const int64_t pos = ht.tile * 32 + r;
    return by_ids ? static_cast<int64_t>(__ldg(a.ids + pos)) : pos;
  };
  auto issue = [&](const HalfTile& ht, int s) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = row_of(ht, h);
      const __half* src = items + (row >= 0 ? row : 0) * a.dim + tig * 8;
      for (int c = 0; c < nc; ++c) {
        CpAsync16(stage + ((s * nc + c) * 2 + h) * 32 + lane, src + c * 32, row >= 0);
      }
    }
    CpAsyncCommit();
  };

  // Ring of `stages` buffers: cur is computed while the next stages - 1
  // half-tiles are in flight. Every step commits one group (empty when the
  // walk is over), so the oldest of the last `stages` groups is cur's.
  HalfTile cur, nxt, nxt2;
  bool have = walk.Next(&cur), have_next = false, have_next2 = false;
  if (have) issue(cur, 0); else CpAsyncCommit();
  if (stages == 3) {
    have_next = have && walk.Next(&nxt);
    if (have_next) issue(nxt, 1); else CpAsyncCommit();
  }
  int s = 0;
  while (have) {
    HalfTile fresh;
    const bool have_fresh = (stages == 3 ? have_next : true) && walk.Next(&fresh);
    if (have_fresh) {
      issue(fresh, (s + stages - 1) % stages);
    } else {
      CpAsyncCommit();
    }
    if (stages == 3) {
      nxt2 = fresh;
      have_next2 = have_fresh;
    } else {
      nxt = fresh;
      have_next = have_fresh;
    }
    CpAsyncWaitOldest(stages);
    __syncwarp();
    const uint4* st = stage + static_cast<size_t>(s) * nc * 2 * 32;
    int64_t rows[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) rows[h] = row_of(cur, h);
    const bool any_row = __any_sync(0xffffffffu, rows[0] >= 0 || rows[1] >= 0);
    float x2[2] = {0.f, 0.f};
    for (int gi = 0; gi < groups && any_row; ++gi) {
      const int gq0 = gi * NT * 8;  // block-local
      if (gq0 >= nqb) break;
      float acc[NT][4];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int t = 0; t < 4; ++t) acc[nt][t] = 0.f;
      const uint4* qf = qfrag + static_cast<size_t>(gi) * NT * nc * 32;
      __syncwarp();  // mma.sync: the whole warp, converged
      for (int c = 0; c < nc; ++c) {
        const uint4 a0 = st[(c * 2 + 0) * 32 + lane];
        const uint4 a1 = st[(c * 2 + 1) * 32 + lane];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const uint4 qv = qf[(nt * nc + c) * 32 + lane];
          Mma16816(acc[nt], a0.x, a1.x, a0.y, a1.y, qv.x, qv.y);
          Mma16816(acc[nt], a0.z, a1.z, a0.w, a1.w, qv.z, qv.w);
        }
        if (gi == 0) {  // ||x||^2 of the thread's two rows, from the same fragments
          const uint32_t w[2][4] = {{a0.x, a0.y, a0.z, a0.w}, {a1.x, a1.y, a1.z, a1.w}};
#pragma unroll
          for (int h = 0; h < 2; ++h)
#pragma unroll
            for (int t = 0; t < 4; ++t) {
              const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[h][t]));
              x2[h] = fmaf(f.x, f.x, fmaf(f.y, f.y, x2[h]));
            }
        }
      }
      if (gi == 0) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          x2[h] += __shfl_xor_sync(0xffffffffu, x2[h], 1);
          x2[h] += __shfl_xor_sync(0xffffffffu, x2[h], 2);
          x2[h] = sqrtf(x2[h]) * 1.001f;  // from here on: ||x||, rounded up
        }
      }
      // Screen: acc[nt][h*2+j] = row h, query nt*8 + 2*tig + j. Queries past
      // the batch have threshold +inf.
      uint32_t cand = 0u;  // bit (nt * 2 + j) * 2 + h
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int ql = gq0 + nt * 8 + 2 * tig + j;
          const float bq = bound_s[ql], tq = thr_s[ql];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (rows[h] >= 0 && MayReach(acc[nt][h * 2 + j], bq * x2[h], tq)) {
              cand |= 1u << ((nt * 2 + j) * 2 + h);
            }
          }
        }
      // Rare once the threshold has risen: the candidates' mask bits, then one
      // atomic per query and warp to queue them (the 8 lanes of a tig share
      // each query).
      for (uint32_t rest = __reduce_or_sync(0xffffffffu, cand); rest != 0u; rest &= rest - 1u) {
        const int bit = __ffs(rest) - 1;
        const int h = bit & 1, j = (bit >> 1) & 1, nt = bit >> 2;
        const int ql = gq0 + nt * 8 + 2 * tig + j;
        const int64_t row = rows[h];
        bool take = ((cand >> bit) & 1u) && ql < nqb;  // NaN rows screen in past the batch
        if (take) {
          const uint32_t m = static_cast<uint32_t>(__ldg(a.mask + (q0 + ql) * a.mask_words + (row >> 5)));
          take = (m >> (row & 31)) & 1u;
        }
        const uint32_t grp = __ballot_sync(0xffffffffu, take) & (0x11111111u << tig);
        const int leader = grp != 0u ? __ffs(grp) - 1 : lane;
        uint32_t base = 0;
        if (take && lane == leader) base = atomicAdd(a.pcnt + q0 + ql, static_cast<uint32_t>(__popc(grp)));
        base = __shfl_sync(0xffffffffu, base, leader);
        if (take) {
          const uint32_t slot = base + __popc(grp & ((1u << lane) - 1u));
          if (slot < static_cast<uint32_t>(a.cap)) {
            a.pend[(q0 + ql) * a.cap + slot] = static_cast<int32_t>(row);
          } else {
            a.flags[0] = 1;
          }
        }
      }
    }
    __syncwarp();  // buffer s is refilled by the next step's issue
    cur = nxt;
    have = have_next;
    if (stages == 3) {
      nxt = nxt2;
      have_next = have_next2;
    }
    s = s + 1 == stages ? 0 : s + 1;
  }
}

// CUDA-core scan: any item type and dim. One lane per row of the tile; an
// approximate fp32 score (sequential fma) screens pairs, which are rescored
// in the canonical order when they may reach the threshold (|approx - c| <=
// (d + 16) 2^-23 ||q|| ||x||, inflated by 1 %): bit-identical to the CPU op.
template <typename T, bool kPrefilter>
__global__ void __launch_bounds__(kScanWarps * 32)
    ScanGenericKernel(ScanArgs a) {
  extern __shared__ float smem_f[];  // [64][dim]
  __shared__ float thr_s[kQueryGroup];
  __shared__ float bound_s[kQueryGroup];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kQueryGroup;
  const int nq = static_cast<int>(min(static_cast<int64_t>(kQueryGroup), a.batch - q0));
  int64_t total = 0;
  const bool by_ids = ScanByIds<kPrefilter>(a, &total);
  const int64_t t_end = min(a.tile_end, (total + 31) / 32);
  if (a.tile_begin >= t_end) return;
  for (int64_t i = threadIdx.x; i < nq * a.dim; i += blockDim.x) smem_f[i] = a.queries[q0 * a.dim + i];
  __syncthreads();
  const float rel = static_cast<float>(a.dim + 16) * ldexpf(1.f, -23) * 1.01f;
  for (int q = warp; q < nq; q += kScanWarps) {
    float q2 = 0.f;
    for (int64_t j = lane; j < a.dim; j += 32) q2 = fmaf(smem_f[q * a.dim + j], smem_f[q * a.dim + j], q2);
    for (int o = 16; o > 0; o >>= 1) q2 += __shfl_xor_sync(0xffffffffu, q2, o);
    if (lane == 0) {
      thr_s[q] = ThresholdScore(a.thr[q0 + q]);
      bound_s[q] = sqrtf(q2) * 1.001f * rel;
    }
  }
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
    float x2 = 0.f;
    const T* item = items + row * a.dim;
    for (int64_t j = 0; j < a.dim; ++j) {
      const float x = ToFloat<T>(item[j]);
      x2 = fmaf(x, x, x2);
#pragma unroll
      for (int q = 0; q < kQueryGroup; ++q) {
        if (q < nq) acc[q] = fmaf(smem_f[q * a.dim + j], x, acc[q]);
      }
    }
    const float xnorm = sqrtf(x2) * 1.001f;
#pragma unroll
    for (int q = 0; q < kQueryGroup; ++q) {
      if (q < nq && ((rq >> q) & 1u) && MayReach(acc[q], bound_s[q] * xnorm, thr_s[q])) {
        Admit(a, q0 + q, row);
      }
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
// Launch shape of the tensor-core scan: n-tiles of 8 queries per group,
// groups per block (all of the batch when shared memory allows) and bytes of
// dynamic shared memory.
struct MmaShape {
  int nt = 1, groups = 1, stages = 2;
  size_t smem = 0;
};
inline MmaShape ChooseMmaShape(int64_t batch, int64_t dim) {
  MmaShape m;
  const int64_t nc = dim / 32;
  const int64_t group_q = std::min<int64_t>(batch, kQueryGroup);
  m.nt = group_q <= 8 ? 1 : group_q <= 16 ? 2 : group_q <= 32 ? 4 : 8;
  const int64_t want = (batch + kQueryGroup - 1) / kQueryGroup;
  constexpr size_t kBudget = 200 * 1024;  // dynamic shared memory per block
  constexpr size_t kTwoBlocks = 104 * 1024;  // two blocks per SM fit
  m.groups = 1;
  while (m.groups < std::min<int64_t>(want, kMmaGroups) &&
         MmaSmemBytes(m.nt, nc, m.groups + 1, 2) <= kBudget) {
    ++m.groups;
  }
  // Three buffers when that keeps the blocks per SM (or one block fits anyway).
  const size_t two = MmaSmemBytes(m.nt, nc, m.groups, 2);
  const size_t three = MmaSmemBytes(m.nt, nc, m.groups, 3);
  // One n-tile (B <= 8): two buffers (H200, 100M x 128, B = 1: 8.3 ms
  // against 8.8 with three; at B = 64 three buffers were faster, 13.1 / 14.0;
  // harness_run8_topk_variants.txt).
  m.stages = m.nt > 1 && (three <= kTwoBlocks || (two > kTwoBlocks && three <= kBudget)) ? 3 : 2;
  m.smem = m.stages == 3 ? three : two;
  return m;
}

template <int NT, bool kPrefilter>
cudaError_t LaunchMma(const ScanArgs& args, int sms, const MmaShape& m, int64_t tiles,
                      cudaStream_t stream) {
  auto kernel = ScanMmaKernel<NT, kPrefilter>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(m.smem));
  if (err != cudaSuccess) return err;
  int per_sm = 0;
  err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kScanWarps * 32, m.smem);
  if (err != cudaSuccess) return err;
  per_sm = std::max(per_sm, 1);
  const int64_t qb = static_cast<int64_t>(m.groups) * NT * 8;
  const int64_t yblocks = (args.batch + qb - 1) / qb;
  const int64_t blocks = std::min<int64_t>((tiles + kScanWarps - 1) / kScanWarps,
                                           static_cast<int64_t>(per_sm) * sms);
  dim3 grid(static_cast<unsigned>(std::max<int64_t>(blocks, 1)), static_cast<unsigned>(yblocks));
  kernel<<<grid, kScanWarps * 32, m.smem, stream>>>(args, m.groups, m.stages);
  return cudaGetLastError();
}

template <typename T, bool kPrefilter>
cudaError_t LaunchScanOnStream(const ScanArgs& args, int sms, int64_t groups, bool use_mma,
                               cudaStream_t stream) {
  const int64_t tiles = args.tile_end - args.tile_begin;
  if (tiles <= 0) return cudaSuccess;
  if (use_mma) {
    const MmaShape m = ChooseMmaShape(args.batch, args.dim);
    switch (m.nt) {
      case 1: return LaunchMma<1, kPrefilter>(args, sms, m, tiles, stream);
      case 2: return LaunchMma<2, kPrefilter>(args, sms, m, tiles, stream);
      case 4: return LaunchMma<4, kPrefilter>(args, sms, m, tiles, stream);
      default: return LaunchMma<8, kPrefilter>(args, sms, m, tiles, stream);
    }
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
  const bool use_mma = std::is_same<T, __half>::value && dim % 32 == 0 && dim > 0 &&
                       dim <= kMmaMaxDim;
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
  args.pend = reinterpret_cast<int32_t*>(ws + lay.pend);
  args.pcnt = reinterpret_cast<uint32_t*>(ws + lay.pcnt);
  if ((err = cudaMemsetAsync(args.pcnt, 0, sizeof(uint32_t) * batch, stream)) != cudaSuccess) {
    return err;
  }

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
        const cudaError_t e =
            prefilter ? LaunchScanOnStream<T, true>(args, sms, groups, use_mma, stream)
                      : LaunchScanOnStream<T, false>(args, sms, groups, use_mma, stream);
        return e != cudaSuccess ? e : LaunchRescore<T>(args, sms, stream);
      },
      // Every admitted pair is rescored: a short first segment (whose
      // threshold is the smallest key) and segments growing 16x, so that each
      // admits about 16 k pairs per query.
      std::max<int64_t>(4096, 4 * k_eff), kMaxGrowth);
}

}  // namespace gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_TOPK_TOPK_GPU_CU_H_
