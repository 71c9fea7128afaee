// CUDA kernels of LinrHammingTopK over raw device pointers and a cudaStream_t
// (no TensorFlow): the same code builds into the TF GPU kernel
// (hamming_kernels_gpu.cu.cc) and into the standalone liblinr_cuda.so.
//
// Results are bit-identical to the CPU kernel: scores are integers (matching
// bits, hamming_common.h) and the order is RanksBefore's (topk_common.h: score
// descending, ties by smaller index), encoded in a 64-bit key
// (HammingKey: score << 32 | ~index) so that all keys are distinct and key
// order is rank order.
//
// Scan (memory-bound part). A warp takes a chunk of 32 consecutive mask words
// (1024 items): one coalesced 128-byte load of mask words per query, a ballot
// finds the words with any passing item (empty words cost no code loads), and
// the warp then walks those words U at a time, lane = item: U independent
// code loads per lane in flight (128-bit codes: one 16-byte load per item,
// 512 contiguous bytes per warp and word), loads only for items some query
// wants. Score = XOR + popcount (__popc), then the key is compared with the
// query's threshold and, if it passes, appended to the query's candidate
// buffer (warp-aggregated atomic). Two kernels:
//   ScanSingle: one query per block row (B == 1): query in registers, the
//               mask word decides the load. A sparse chunk (<= kCompactMax
//               passing items of 1024) is first compacted into a list of
//               passing positions in shared memory, so that every lane of a
//               load instruction fetches a passing item.
//   ScanGroup:  up to kGroup queries per block: every code is loaded once and
//               scored against each query whose mask bit is set (query codes
//               and the chunk's mask words in shared memory).
// Code widths Wc in {1, 2, 4, 8, 16} with aligned codes use vector loads and
// unrolled scoring; any other width a generic loop.
//
// Selection (k <= kMaxK). Rows are streamed in segments of mask words of
// growing size. A candidate is appended when its key >= the query's
// threshold (the k-th best key seen in earlier segments, 0 at first). After
// each segment a prune kernel (one block per query) radix-selects the k-th
// best key of a buffer holding more than k, keeps exactly those k and raises
// the threshold; after the last one it sorts the k survivors (bitonic, shared
// memory) and writes scores / indices / count, padding with -inf / -1.
// Segment sizes grow by (cap - k) / (2k) so that, for items in random order,
// a segment's admissions stay well under the buffer's capacity; an overflow
// (adversarial orders only) is flagged and the call reruns with segments of
// (cap - k) items, which cannot overflow. The launcher synchronises the
// stream once, to read that flag.
//
// Indices: N <= INT32_MAX (the op's int32 indices; ValidateMaskedTopKShapes
// rejects larger N, as the CPU op does). Offsets are int64 internally, so
// N * Wc may exceed 2^31 (1e9 items x 4 words).
#ifndef LINR_CUSTOM_OPS_QUANT_HAMMING_GPU_CU_H_
#define LINR_CUSTOM_OPS_QUANT_HAMMING_GPU_CU_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "custom_ops/quant/hamming_common.h"
#include "custom_ops/topk/topk_common.h"

namespace linr {
namespace hamming_gpu {

constexpr int64_t kMaxK = 16384;  // final sort in shared memory (8 bytes a key)
constexpr int kGroup = 64;        // queries per block of ScanGroup
constexpr int kWarps = 8;         // warps per scan block
constexpr int kSelectThreads = 1024;
constexpr uint32_t kFull = 0xffffffffu;
constexpr int kCompactMax = 256;  // ScanSingle: chunks with <= this many passing items are compacted

// ---------------------------------------------------------------------------
// Workspace: per query a candidate buffer of `cap` keys, a threshold key and a
// count; one overflow flag.
struct Layout {
  int64_t cap = 0;
  size_t buf = 0, thr = 0, cnt = 0, flags = 0, total = 0;
};

inline size_t AlignUp(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

inline int64_t Capacity(int64_t k) {
  const int64_t cap = std::max<int64_t>(8 * k, 32768);
  return (cap + 1023) / 1024 * 1024;
}

inline Layout MakeLayout(int64_t batch, int64_t k_eff) {
  Layout l;
  l.cap = Capacity(std::max<int64_t>(k_eff, 1));
  size_t off = 0;
  l.buf = off;
  off = AlignUp(off + sizeof(uint64_t) * batch * l.cap);
  l.thr = off;
  off = AlignUp(off + sizeof(uint64_t) * batch);
  l.cnt = off;
  off = AlignUp(off + sizeof(uint32_t) * batch);
  l.flags = off;
  off = AlignUp(off + sizeof(int32_t) * 4);
  l.total = off;
  return l;
}

// Bytes of device workspace LaunchHammingTopK needs.
inline size_t HammingWorkspaceBytes(int64_t batch, int64_t num_items, int64_t k) {
  const int64_t k_eff = std::max<int64_t>(1, std::min(k, num_items));
  return std::max<size_t>(MakeLayout(std::max<int64_t>(batch, 1), k_eff).total, 256);
}

// ---------------------------------------------------------------------------
// Scan.
struct ScanArgs {
  const uint32_t* queries;  // [B, words]
  const uint32_t* codes;    // [N, words]
  const uint32_t* mask;     // [B, mask_words] or nullptr (every item passes)
  int64_t batch, num_items, words, mask_words;
  int64_t word_begin, word_end;  // segment, in mask words (32 items each)
  uint64_t* buf;
  const uint64_t* thr;
  uint32_t* cnt;
  int32_t* flags;
  int64_t cap;
};

// Items per lane in flight per step: more for narrow codes.
template <int WC>
struct Unroll {
  static constexpr int value = WC == 0 ? 2 : (WC <= 4 ? 4 : (WC == 8 ? 2 : 1));
};

// Loads the WC words of one code (WC > 0; `p` aligned to min(WC, 4) words).
template <int WC>
__device__ __forceinline__ void LoadCode(const uint32_t* p, uint32_t* out) {
  if constexpr (WC == 1) {
    out[0] = __ldg(p);
  } else if constexpr (WC == 2) {
    uint2 v;
    asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];"
                 : "=r"(v.x), "=r"(v.y)
                 : "l"(p));
    out[0] = v.x;
    out[1] = v.y;
  } else if constexpr (WC == 4) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
  } else {
    static_assert(WC % 4 == 0, "vector loads need WC in {1, 2, 4, 8, 16}");
#pragma unroll
    for (int j = 0; j < WC / 4; ++j) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(p) + j);
      out[4 * j + 0] = v.x;
      out[4 * j + 1] = v.y;
      out[4 * j + 2] = v.z;
      out[4 * j + 3] = v.w;
    }
  }
}

// Matching bits of a query (registers or shared memory) and a loaded code.
// Words are taken three at a time through a carry-save adder (per bit:
// x0 + x1 + x2 = ones + 2 * twos), so three words cost two popcounts (POPC
// runs at a quarter of the integer rate on sm_90); the sum is exact.
template <int WC>
__device__ __forceinline__ int ScoreFixed(const uint32_t* q, const uint32_t* c) {
  int dist = 0;
  int j = 0;
#pragma unroll
  for (; j + 3 <= WC; j += 3) {
    const uint32_t x0 = q[j] ^ c[j], x1 = q[j + 1] ^ c[j + 1], x2 = q[j + 2] ^ c[j + 2];
    const uint32_t ones = x0 ^ x1 ^ x2;
    const uint32_t twos = (x0 & x1) | (x2 & (x0 ^ x1));
    dist += Popcount32(ones) + 2 * Popcount32(twos);
  }
#pragma unroll
  for (; j < WC; ++j) dist += Popcount32(q[j] ^ c[j]);
  return 32 * WC - dist;
}

// Generic width: reads the item's code from global memory.
__device__ __forceinline__ int ScoreGeneric(const uint32_t* q, const uint32_t* codes, int64_t item,
                                            int64_t words) {
  const uint32_t* c = codes + item * words;
  int dist = 0;
  for (int64_t j = 0; j < words; ++j) dist += Popcount32(__ldg(q + j) ^ __ldg(c + j));
  return static_cast<int>(32 * words) - dist;
}

// Appends the lanes' keys with `want` to query q's buffer (whole warp calls).
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

// Takes the next (up to) U set bits of `live` (warp-uniform) as word positions
// (-1: none).
template <int U>
__device__ __forceinline__ void NextWords(uint32_t& live, int (&js)[U]) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    if (live != 0u) {
      js[u] = __ffs(live) - 1;
      live &= live - 1u;
    } else {
      js[u] = -1;
    }
  }
}

// One query per blockIdx.y (B == 1 path).
template <int WC>
__global__ void __launch_bounds__(kWarps * 32) ScanSingleKernel(ScanArgs a) {
  constexpr int U = Unroll<WC>::value;
  constexpr int R = WC > 0 ? WC : 1;
  __shared__ uint16_t list_s[kWarps * kCompactMax];
  const int lane = threadIdx.x & 31;
  const int64_t q = blockIdx.y;
  uint32_t qc[R];
  if constexpr (WC > 0) {
#pragma unroll
    for (int j = 0; j < WC; ++j) qc[j] = __ldg(a.queries + q * WC + j);
  }
  const uint32_t* qp = a.queries + q * a.words;
  const uint64_t thr = a.thr[q];
  const uint32_t* mrow = a.mask != nullptr ? a.mask + q * a.mask_words : nullptr;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * kWarps;
  const int64_t gwarp = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  for (int64_t c0 = a.word_begin + gwarp * 32; c0 < a.word_end; c0 += nwarps * 32) {
    const int64_t w = c0 + lane;
    uint32_t m = 0;
    if (w < a.word_end) {
      m = HammingValidBits(w, a.num_items);
      if (mrow != nullptr) m &= static_cast<uint32_t>(__ldg(mrow + w));
    }
    // Sparse chunk: list the passing items (positions in the chunk) in
    // shared memory and give every lane one, so that each load instruction
    // serves 32 items instead of the few passing in one word.
    const int n_pass = __popc(m);
    int incl = n_pass;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(kFull, incl, o);
      if (lane >= o) incl += v;
    }
    const int total = __shfl_sync(kFull, incl, 31);
    // Compact only when the word path would need several steps.
    if (total <= kCompactMax && __popc(__ballot_sync(kFull, m != 0u)) > U) {
      uint16_t* list = list_s + (threadIdx.x >> 5) * kCompactMax;
      int off = incl - n_pass;
      for (uint32_t bits = m; bits != 0u; bits &= bits - 1u) {
        list[off++] = static_cast<uint16_t>(lane * 32 + __ffs(bits) - 1);
      }
      __syncwarp();
      for (int base = 0; base < total; base += 32 * U) {
        bool bit[U];
        int64_t item[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int p = base + u * 32 + lane;
          bit[u] = p < total;
          item[u] = c0 * 32 + (bit[u] ? list[p] : 0);
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
          uint64_t key = 0;
          bool want = false;
          if (bit[u]) {
            int s;
            if constexpr (WC > 0) {
              s = ScoreFixed<WC>(qc, code[u]);
            } else {
              s = ScoreGeneric(qp, a.codes, item[u], a.words);
            }
            key = HammingKey(s, item[u]);
            want = key >= thr;
          }
          Append(a, q, want, key, lane);
        }
      }
      __syncwarp();  // the next chunk overwrites the list
      continue;
    }
    uint32_t live = __ballot_sync(kFull, m != 0u);
    while (live != 0u) {
      int js[U];
      NextWords<U>(live, js);
      bool bit[U];
      int64_t item[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const uint32_t mw = __shfl_sync(kFull, m, js[u] < 0 ? 0 : js[u]);
        bit[u] = js[u] >= 0 && ((mw >> lane) & 1u);
        item[u] = (c0 + js[u]) * 32 + lane;
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
        uint64_t key = 0;
        bool want = false;
        if (bit[u]) {
          int s;
          if constexpr (WC > 0) {
            s = ScoreFixed<WC>(qc, code[u]);
          } else {
            s = ScoreGeneric(qp, a.codes, item[u], a.words);
          }
          key = HammingKey(s, item[u]);
          want = key >= thr;
        }
        Append(a, q, want, key, lane);
      }
    }
  }
}

// Up to kGroup queries per blockIdx.y; each code is loaded once per group.
// Dynamic shared memory: [kWarps][nq][32] mask words of the warp's chunk.
template <int WC>
__global__ void __launch_bounds__(kWarps * 32) ScanGroupKernel(ScanArgs a) {
  constexpr int U = Unroll<WC>::value;
  constexpr int R = WC > 0 ? WC : 1;
  extern __shared__ uint32_t mask_s[];
  __shared__ uint64_t thr_s[kGroup];
  __shared__ __align__(16) uint32_t q_s[kGroup * R];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kGroup;
  const int nq = static_cast<int>(min(static_cast<int64_t>(kGroup), a.batch - q0));
  for (int i = threadIdx.x; i < nq; i += blockDim.x) thr_s[i] = a.thr[q0 + i];
  if constexpr (WC > 0) {
    for (int i = threadIdx.x; i < nq * WC; i += blockDim.x) q_s[i] = __ldg(a.queries + q0 * WC + i);
  }
  __syncthreads();
  uint32_t* wm = mask_s + warp * nq * 32;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * kWarps;
  const int64_t gwarp = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  for (int64_t c0 = a.word_begin + gwarp * 32; c0 < a.word_end; c0 += nwarps * 32) {
    const int64_t w = c0 + lane;
    const uint32_t valid = w < a.word_end ? HammingValidBits(w, a.num_items) : 0u;
    uint32_t uni = 0;
    if (a.mask != nullptr) {
#pragma unroll 4
      for (int q = 0; q < nq; ++q) {
        const uint32_t m =
            valid != 0u ? static_cast<uint32_t>(__ldg(a.mask + (q0 + q) * a.mask_words + w)) & valid
                        : 0u;
        wm[q * 32 + lane] = m;
        uni |= m;
      }
    } else {
      for (int q = 0; q < nq; ++q) wm[q * 32 + lane] = valid;
      uni = valid;
    }
    __syncwarp();
    uint32_t live = __ballot_sync(kFull, uni != 0u);
    while (live != 0u) {
      int js[U];
      NextWords<U>(live, js);
      bool any[U];
      int64_t item[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const uint32_t mw = __shfl_sync(kFull, uni, js[u] < 0 ? 0 : js[u]);
        any[u] = js[u] >= 0 && ((mw >> lane) & 1u);
        item[u] = (c0 + js[u]) * 32 + lane;
      }
      uint32_t code[U][R];
      if constexpr (WC > 0) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          if (any[u]) LoadCode<WC>(a.codes + item[u] * WC, code[u]);
        }
      }
      for (int q = 0; q < nq; ++q) {
        uint32_t qc[R];
        if constexpr (WC > 0) {
#pragma unroll
          for (int j = 0; j < WC; ++j) qc[j] = q_s[q * WC + j];
        }
        const uint64_t thr = thr_s[q];
#pragma unroll
        for (int u = 0; u < U; ++u) {
          bool want = false;
          uint64_t key = 0;
          if (any[u] && ((wm[q * 32 + js[u]] >> lane) & 1u)) {
            int s;
            if constexpr (WC > 0) {
              s = ScoreFixed<WC>(qc, code[u]);
            } else {
              s = ScoreGeneric(a.queries + (q0 + q) * a.words, a.codes, item[u], a.words);
            }
            key = HammingKey(s, item[u]);
            want = key >= thr;
          }
          Append(a, q0 + q, want, key, lane);
        }
      }
    }
    __syncwarp();  // the next chunk overwrites wm
  }
}

// ---------------------------------------------------------------------------
// Selection.

// k-th largest key (1-based) among data[0, n) (n >= k >= 1, distinct keys), by
// an 8-bit-digit radix select from the top byte down; whole block calls.
__device__ uint64_t KthLargestKey(const uint64_t* data, int64_t n, int64_t k) {
  __shared__ uint32_t hist[256];
  __shared__ uint32_t digit_s;
  __shared__ int64_t need_s;
  uint64_t prefix = 0, known = 0;
  int64_t need = k;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0u;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const uint64_t v = data[i];
      if ((v & known) == prefix) atomicAdd(&hist[(v >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane L owns digits 255 - 8L down to 248 - 8L (descending order).
      const int lane = threadIdx.x;
      uint32_t h[8];
      uint32_t sum = 0;
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        h[t] = hist[255 - 8 * lane - t];
        sum += h[t];
      }
      uint32_t incl = sum;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const uint32_t v = __shfl_up_sync(kFull, incl, o);
        if (lane >= o) incl += v;
      }
      int64_t before = static_cast<int64_t>(incl - sum);
      if (before < need && before + static_cast<int64_t>(sum) >= need) {
#pragma unroll
        for (int t = 0; t < 8; ++t) {
          if (before + h[t] >= need) {
            digit_s = static_cast<uint32_t>(255 - 8 * lane - t);
            need_s = need - before;
            break;
          }
          before += h[t];
        }
      }
    }
    __syncthreads();
    prefix |= static_cast<uint64_t>(digit_s) << shift;
    known |= static_cast<uint64_t>(255) << shift;
    need = need_s;
    __syncthreads();
  }
  return prefix;
}

// Keeps the keys >= kth in place (order preserved); returns how many.
__device__ int64_t KeepAtLeast(uint64_t* data, int64_t n, uint64_t kth) {
  __shared__ uint32_t warp_n[kSelectThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nw = blockDim.x >> 5;
  int64_t out = 0;
  for (int64_t c = 0; c < n; c += blockDim.x) {
    const int64_t i = c + threadIdx.x;
    const uint64_t v = i < n ? data[i] : 0;
    const bool keep = i < n && v >= kth;
    const uint32_t b = __ballot_sync(kFull, keep);
    if (lane == 0) warp_n[warp] = __popc(b);
    __syncthreads();  // every thread has read its element of this chunk
    int64_t before = 0, all = 0;
    for (int t = 0; t < nw; ++t) {
      before += t < warp ? warp_n[t] : 0;
      all += warp_n[t];
    }
    if (keep) data[out + before + __popc(b & ((1u << lane) - 1u))] = v;
    out += all;
    __syncthreads();
  }
  return out;
}

// One block per query: a buffer holding more than k keys keeps its best k and
// the threshold rises to the k-th; with `final_pass`, the survivors are sorted
// and written (k_out columns, padding -inf / -1) with their count.
__global__ void __launch_bounds__(kSelectThreads)
    PruneKernel(uint64_t* buf, uint32_t* cnt, uint64_t* thr, int64_t cap, int64_t k,
                bool final_pass, int64_t k_out, float* out_scores, int32_t* out_idx,
                int32_t* out_count) {
  extern __shared__ uint64_t sort_s[];
  const int64_t q = blockIdx.x;
  uint64_t* data = buf + q * cap;
  int64_t n = min(static_cast<int64_t>(cnt[q]), cap);
  if (n > k) {
    const uint64_t kth = KthLargestKey(data, n, k);
    n = KeepAtLeast(data, n, kth);
    if (threadIdx.x == 0) {
      cnt[q] = static_cast<uint32_t>(n);
      thr[q] = kth;
    }
  }
  if (!final_pass) return;
  int64_t p = 1;
  while (p < n) p <<= 1;
  for (int64_t i = threadIdx.x; i < p; i += blockDim.x) sort_s[i] = i < n ? data[i] : 0;
  __syncthreads();
  // Bitonic sort, descending.
  for (int64_t size = 2; size <= p; size <<= 1) {
    for (int64_t stride = size >> 1; stride > 0; stride >>= 1) {
      for (int64_t i = threadIdx.x; i < p; i += blockDim.x) {
        const int64_t j = i ^ stride;
        if (j > i) {
          const bool desc = (i & size) == 0;
          const uint64_t x = sort_s[i], y = sort_s[j];
          if (desc ? x < y : x > y) {
            sort_s[i] = y;
            sort_s[j] = x;
          }
        }
      }
      __syncthreads();
    }
  }
  const float neg_inf = -__int_as_float(0x7f800000);
  for (int64_t i = threadIdx.x; i < k_out; i += blockDim.x) {
    if (i < n) {
      out_scores[q * k_out + i] = static_cast<float>(HammingKeyScore(sort_s[i]));
      out_idx[q * k_out + i] = HammingKeyIndex(sort_s[i]);
    } else {
      out_scores[q * k_out + i] = neg_inf;
      out_idx[q * k_out + i] = -1;
    }
  }
  if (threadIdx.x == 0) out_count[q] = static_cast<int32_t>(n);
}

__global__ void FillEmptyKernel(int64_t batch, int64_t k_out, float* scores, int32_t* idx,
                                int32_t* count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = first; i < batch * k_out; i += stride) {
    scores[i] = -__int_as_float(0x7f800000);
    idx[i] = -1;
  }
  for (int64_t i = first; i < batch; i += stride) count[i] = 0;
}

// ---------------------------------------------------------------------------
// Launcher.

// Code width dispatched to a vector path (0: generic).
inline int FixedWidth(const int32_t* codes, int64_t words) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(codes);
  switch (words) {
    case 1: return 1;
    case 2: return p % 8 == 0 ? 2 : 0;
    case 4: return p % 16 == 0 ? 4 : 0;
    case 8: return p % 16 == 0 ? 8 : 0;
    case 16: return p % 16 == 0 ? 16 : 0;
    default: return 0;
  }
}

template <int WC>
cudaError_t LaunchScanWidth(const ScanArgs& a, int sms, cudaStream_t stream) {
  const int64_t chunks = (a.word_end - a.word_begin + 31) / 32;
  if (chunks <= 0) return cudaSuccess;
  const int64_t want = (chunks + kWarps - 1) / kWarps;
  int per_sm = 0;
  if (a.batch == 1) {
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, ScanSingleKernel<WC>, kWarps * 32, 0);
    const int64_t blocks = std::min<int64_t>(want, static_cast<int64_t>(std::max(per_sm, 1)) * sms);
    ScanSingleKernel<WC><<<dim3(static_cast<unsigned>(blocks), 1), kWarps * 32, 0, stream>>>(a);
    return cudaGetLastError();
  }
  const int64_t groups = (a.batch + kGroup - 1) / kGroup;
  const int nq = static_cast<int>(std::min<int64_t>(a.batch, kGroup));
  const size_t smem = sizeof(uint32_t) * kWarps * nq * 32;
  cudaError_t err = cudaFuncSetAttribute(ScanGroupKernel<WC>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, ScanGroupKernel<WC>, kWarps * 32, smem);
  const int64_t per_group =
      std::max<int64_t>(1, static_cast<int64_t>(std::max(per_sm, 1)) * sms / groups);
  const int64_t blocks = std::min<int64_t>(want, per_group);
  ScanGroupKernel<WC>
      <<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(groups)), kWarps * 32, smem,
         stream>>>(a);
  return cudaGetLastError();
}

inline cudaError_t LaunchScan(const ScanArgs& a, int wc, int sms, cudaStream_t stream) {
  switch (wc) {
    case 1: return LaunchScanWidth<1>(a, sms, stream);
    case 2: return LaunchScanWidth<2>(a, sms, stream);
    case 4: return LaunchScanWidth<4>(a, sms, stream);
    case 8: return LaunchScanWidth<8>(a, sms, stream);
    case 16: return LaunchScanWidth<16>(a, sms, stream);
    default: return LaunchScanWidth<0>(a, sms, stream);
  }
}

// Runs LinrHammingTopK. Device pointers: query_codes [B, words], item_codes
// [N, words], mask [B, ceil(N/32)] (nullptr: every item passes), outputs
// scores [B, k], indices [B, k], count [B]; `workspace` holds
// HammingWorkspaceBytes(B, N, k) bytes. Returns cudaErrorInvalidValue for
// k <= 0, words <= 0, N > INT32_MAX or min(k, N) > kMaxK. Synchronises
// `stream` once (overflow flag).
inline cudaError_t LaunchHammingTopK(const int32_t* query_codes, const int32_t* item_codes,
                                     const int32_t* mask, int64_t batch, int64_t num_items,
                                     int64_t words, int64_t k, void* workspace,
                                     size_t workspace_bytes, float* out_scores,
                                     int32_t* out_idx, int32_t* out_count, cudaStream_t stream) {
  if (k <= 0 || words <= 0 || num_items < 0 || batch < 0 ||
      num_items > std::numeric_limits<int32_t>::max()) {
    return cudaErrorInvalidValue;
  }
  if (batch == 0) return cudaSuccess;
  const int64_t k_eff = std::min(k, num_items);
  if (k_eff == 0) {
    FillEmptyKernel<<<64, 256, 0, stream>>>(batch, k, out_scores, out_idx, out_count);
    return cudaGetLastError();
  }
  if (k_eff > kMaxK) return cudaErrorInvalidValue;
  const Layout lay = MakeLayout(batch, k_eff);
  if (workspace_bytes < lay.total) return cudaErrorInvalidValue;
  char* ws = static_cast<char*>(workspace);
  uint64_t* buf = reinterpret_cast<uint64_t*>(ws + lay.buf);
  uint64_t* thr = reinterpret_cast<uint64_t*>(ws + lay.thr);
  uint32_t* cnt = reinterpret_cast<uint32_t*>(ws + lay.cnt);
  int32_t* flags = reinterpret_cast<int32_t*>(ws + lay.flags);
  int device = 0, sms = 0;
  cudaError_t err;
  if ((err = cudaGetDevice(&device)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess) {
    return err;
  }
  const int64_t mask_words = (num_items + 31) / 32;
  const int wc = FixedWidth(item_codes, words);

  ScanArgs a;
  a.queries = reinterpret_cast<const uint32_t*>(query_codes);
  a.codes = reinterpret_cast<const uint32_t*>(item_codes);
  a.mask = reinterpret_cast<const uint32_t*>(mask);
  a.batch = batch;
  a.num_items = num_items;
  a.words = words;
  a.mask_words = mask_words;
  a.buf = buf;
  a.thr = thr;
  a.cnt = cnt;
  a.flags = flags;
  a.cap = lay.cap;

  int64_t p = 1;
  while (p < k_eff) p <<= 1;
  const size_t sort_smem = sizeof(uint64_t) * static_cast<size_t>(p);
  err = cudaFuncSetAttribute(PruneKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(sort_smem));
  if (err != cudaSuccess) return err;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool safe = attempt == 1;
    cudaMemsetAsync(cnt, 0, sizeof(uint32_t) * batch, stream);
    cudaMemsetAsync(thr, 0, sizeof(uint64_t) * batch, stream);
    cudaMemsetAsync(flags, 0, sizeof(int32_t) * 4, stream);
    // In words: the first segment (cap items) cannot overflow an empty
    // buffer; a safe segment adds at most cap - k items to k survivors.
    const int64_t first = std::max<int64_t>(1, lay.cap / 32);
    const int64_t safe_seg = std::max<int64_t>(1, (lay.cap - k_eff) / 32);
    const int64_t growth = std::max<int64_t>(2, (lay.cap - k_eff) / (2 * k_eff));
    int64_t begin = 0, seg = first;
    while (begin < mask_words) {
      const int64_t end = std::min(mask_words, begin + seg);
      a.word_begin = begin;
      a.word_end = end;
      if ((err = LaunchScan(a, wc, sms, stream)) != cudaSuccess) return err;
      const bool last = end >= mask_words;
      PruneKernel<<<static_cast<unsigned>(batch), kSelectThreads, last ? sort_smem : 0, stream>>>(
          buf, cnt, thr, lay.cap, k_eff, last, k, out_scores, out_idx, out_count);
      if ((err = cudaGetLastError()) != cudaSuccess) return err;
      begin = end;
      seg = safe ? safe_seg : std::max<int64_t>(1, end * growth);
    }
    int32_t overflow = 0;
    if ((err = cudaMemcpyAsync(&overflow, flags, sizeof(int32_t), cudaMemcpyDeviceToHost,
                               stream)) != cudaSuccess) {
      return err;
    }
    if ((err = cudaStreamSynchronize(stream)) != cudaSuccess) return err;
    if (!overflow) break;
  }
  return cudaSuccess;
}

}  // namespace hamming_gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANT_HAMMING_GPU_CU_H_
