// CUDA kernels of LinrHammingTopK over raw device pointers and a cudaStream_t
// (no TensorFlow): the same code builds into the TF GPU kernel
// (hamming_kernels_gpu.cu.cc) and into the standalone liblinr_cuda.so.
//
// Results are bit-identical to the CPU kernel: scores are integers (matching
// bits, hamming_common.h) and the order is RanksBefore's (select/ordering.h: score
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
//               and the chunk's mask words in shared memory). Bound by the
//               integer issue slots at large B (B x Wc x (xor + popc + add)
//               per item: 108 ms at 1B x 128-bit, B = 64, 10 % pass).
//   ScanMma:    B >= kMmaMinBatch (16) and Wc in {2, 4, 8}: the scores come
//               from the tensor cores (b1 and.popc or int8 mma.sync, 8 items x
//               64 queries per warp tile), codes and mask words staged in
//               shared memory by cp.async; see "Tensor-core scan" below.
//               LINR_HAMMING_MMA = b1 | i8 | off (or LaunchHammingTopK's
//               `variant`) picks the kernel; b1 is the default.
// Code widths Wc in {1, 2, 4, 8, 16} with aligned codes use vector loads and
// unrolled scoring; any other width a generic loop.
//
// Selection (k <= kMaxK): select/select_gpu.cu.h, shared with the float
// top-k kernels. Rows are streamed in segments of mask words of growing size;
// a candidate is appended when its key >= the query's threshold (the k-th best
// key seen in earlier segments, 0 at first); after each segment a prune kernel
// keeps the best k and raises the threshold, the last one sorts and writes
// scores / indices / count (padding -inf / -1). A candidate-buffer overflow
// (adversarial orders only) reruns the call in safe mode. The launcher
// synchronises the stream once, to read that flag.
//
// Indices: N <= INT32_MAX (the op's int32 indices; ValidateMaskedTopKShapes
// rejects larger N, as the CPU op does). Offsets are int64 internally, so
// N * Wc may exceed 2^31 (1e9 items x 4 words).
#ifndef LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_GPU_CU_H_
#define LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_GPU_CU_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "custom_ops/quantization/hamming_common.h"
#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu.cu.h"

namespace linr {
namespace hamming_gpu {

using select_gpu::kMaxK;          // final sort in shared memory (8 bytes a key)
constexpr int kGroup = 64;        // queries per block of ScanGroup
constexpr int kWarps = 8;         // warps per scan block
constexpr uint32_t kFull = 0xffffffffu;
constexpr int kCompactMax = 256;  // ScanSingle: chunks with <= this many passing items are compacted

// ---------------------------------------------------------------------------
// Keys (HammingKey, hamming_common.h) and workspace: per query a candidate
// buffer of `cap` keys, a threshold key and a count; one overflow flag
// (select_gpu::LayoutSelect).
struct HammingKeyCodec {
  __device__ static float Score(uint64_t key) { return static_cast<float>(HammingKeyScore(key)); }
  __device__ static int32_t Index(uint64_t key) { return HammingKeyIndex(key); }
};

struct Layout : select_gpu::SelectLayout {
  size_t total = 0;
};

inline Layout MakeLayout(int64_t batch, int64_t k_eff) {
  Layout l;
  l.total = select_gpu::LayoutSelect(batch, k_eff, &l);
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
// Tensor-core scan (B >= kMmaMinBatch, Wc in {2, 4, 8}): ScanMmaKernel.
//
// One warp scores a tile of 8 items (the n = 8 columns of an m16n8 mma)
// against up to 64 queries (four m = 16 row tiles) at once; the scores come out
// of the tensor cores as s32 accumulators, the CUDA cores only stage codes and
// test the result. Two variants (MmaVariant):
//   kB1: mma.sync.m16n8k128.b1.b1.s32.and.popc. matches(q, i) = popc(q & i) +
//        popc(~q & ~i): two and.popc mmas into one accumulator, the first on the
//        codes, the second on their complements (queries complemented once per
//        block, item words by one LOP per register). The fragments are the raw
//        code words (thread t of a quad holds word 4s + t of k-step s), so
//        nothing is expanded. (.xor.popc would need one mma, but on sm_90 nvcc
//        lowers it to a call of an internal emulation routine
//        (__cuda_sm_9x_mma_bit_internal_xor_m16n8k128), and.popc to one
//        instruction.) Wc = 2 pads each 128-bit k-step with zero words.
//   kI8: mma.sync.m16n8k32.s32.s8.u8.s32: queries as +-1 bytes (s8, expanded
//        once per block), items as 0/1 bytes (u8), expanded in registers: one
//        shift and one AND per register (byte j of the register for quad thread
//        t is bit t + 8j (or t + 4 + 8j) of the word: a fixed permutation of k
//        inside each 32-bit k-step, applied to the queries too, so the dot
//        product is unchanged). sum_k (2q_k - 1) i_k = 2 popc(q & i) - popc(i),
//        so matches = W - popc(q) + dot.
// In both, the accumulator starts at C = -(threshold score) (kI8: plus W -
// popc(q)), so that after the mmas acc = score - thr_score, and an item can
// only be a candidate if acc >= 0: the warp ANDs its 16 accumulators per tile
// and one vote tells whether any (item, query) of the tile reaches the
// threshold. Only then (all tiles of the first segment, rare after it: keys >=
// threshold are about k / items seen) does it test the pass-mask bits and
// the exact key and append (per-lane atomics).
//
// Memory: a warp walks chunks of 256 items (8 mask words per query); per
// chunk it stages the 64 queries' mask words (64 x 32 bytes) and the 256 codes
// in shared memory with cp.async, double-buffered: while it scores chunk i,
// the codes of chunk i + 1 and the mask words of chunk i + 2 are in flight
// (about 6 KB per warp, 16 warps per SM). Codes of items no query lets pass
// are not read (zero-filled), and tiles of 8 such items are skipped.
enum MmaVariant : int { kMmaAuto = 0, kMmaOff = 1, kMmaB1 = 2, kMmaI8 = 3 };
// Below this the CUDA-core kernels are used: on the H200 (run 8 of
// bench/gpu/hamming_harness.py, 1B x 128-bit codes) b1 took 24.1 ms at B = 8
// against 14.5 ms for ScanGroup, and 24.3 against 27.2 ms at B = 16.
constexpr int64_t kMmaMinBatch = 16;
constexpr int kMmaWarps = 4;         // warps per block of ScanMmaKernel
constexpr int kMmaChunkWords = 8;    // mask words (x 32 items) per warp chunk
constexpr int kMmaChunkItems = kMmaChunkWords * 32;
constexpr int kMmaTiles = kMmaChunkItems / 8;  // n-tiles per chunk

template <int WC, int V>
struct MmaCfg {
  static_assert(WC == 2 || WC == 4 || WC == 8, "tensor-core path: Wc in {2, 4, 8}");
  // Queries per block: kI8 at Wc = 8 would need 128 fragment registers for 64.
  static constexpr int kQ = (V == kMmaI8 && WC == 8) ? 32 : 64;
  static constexpr int kMT = kQ / 16;                        // m-tiles
  static constexpr int kKS = V == kMmaB1 ? (WC + 3) / 4 : WC;  // k-steps (128 / 32 bits)
  static constexpr int kPieceBytes = WC == 2 ? 8 : 16;       // cp.async size
  static constexpr int kPiecesPerItem = WC * 4 / kPieceBytes;
  static constexpr int kCodeWordsPerBuf = kMmaChunkItems * WC;
  static constexpr int kMaskWordsPerBuf = kQ * kMmaChunkWords;
  // Dynamic shared memory per warp, in 32-bit words: 2 code buffers, 3 mask buffers.
  static constexpr int kWarpWords = 2 * kCodeWordsPerBuf + 3 * kMaskWordsPerBuf;
};

template <int WC, int V>
constexpr size_t MmaSmemBytes() {
  return sizeof(uint32_t) * kMmaWarps * MmaCfg<WC, V>::kWarpWords;
}

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// cp.async of `bytes` (4, 8 or 16) from global `src` to shared `dst`; only
// `src_bytes` (0 or bytes) are read, the rest is zero-filled.
template <int BYTES>
__device__ __forceinline__ void CpAsync(uint32_t dst, const void* src, int src_bytes) {
  if constexpr (BYTES == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src),
                 "n"(BYTES), "r"(src_bytes));
  }
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void CpAsyncWaitAll() { asm volatile("cp.async.wait_group 0;\n" ::); }

// d = A(16 x 128 bits, a0 rows g / a1 rows g + 8) AND-popc B(128 x 8, b) + c.
__device__ __forceinline__ void MmaB1(int (&d)[4], uint32_t a0, uint32_t a1, uint32_t b,
                                      const int (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k128.row.col.s32.b1.b1.s32.and.popc "
      "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};\n"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a0), "r"(a1), "r"(b), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]));
}

// d = A(16 x 32 s8) B(32 x 8 u8) + c.
__device__ __forceinline__ void MmaI8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                      uint32_t b1, const int (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.u8.s32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(c[0]), "r"(c[1]),
        "r"(c[2]), "r"(c[3]));
}

// Bits t, t + 8, t + 16, t + 24 of w as bytes 0..3 of 0/1.
__device__ __forceinline__ uint32_t SpreadBits(uint32_t w, int t) {
  return (w >> t) & 0x01010101u;
}
// The same bits as s8 +1 (bit set) / -1 (bit clear).
__device__ __forceinline__ uint32_t SpreadSigned(uint32_t w, int t) {
  return (SpreadBits(w, t) * 0xFEu) ^ 0xFFFFFFFFu;
}

template <int WC, int V>
__global__ void __launch_bounds__(kMmaWarps * 32) ScanMmaKernel(ScanArgs a, int groups) {
  using Cfg = MmaCfg<WC, V>;
  constexpr int kQ = Cfg::kQ, kMT = Cfg::kMT, kKS = Cfg::kKS;
  constexpr int W = 32 * WC;
  extern __shared__ __align__(16) uint32_t mma_smem[];
  __shared__ uint64_t thr_key_s[kQ];
  __shared__ int thr_score_s[kQ];

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int group = static_cast<int>(blockIdx.x % groups);
  const int64_t bx = blockIdx.x / groups;
  const int64_t q0 = static_cast<int64_t>(group) * kQ;
  const int nq = static_cast<int>(min(static_cast<int64_t>(kQ), a.batch - q0));
  const int mt = (nq + 15) / 16;
  for (int i = threadIdx.x; i < kQ; i += blockDim.x) {
    const uint64_t thr = i < nq ? a.thr[q0 + i] : ~0ull;
    thr_key_s[i] = thr;
    thr_score_s[i] = static_cast<int>(thr >> 32);
  }
  __syncthreads();

  // Query fragments and accumulator start values (registers, whole kernel).
  // Row r of m-tile m is query 16 m + r; this thread's rows are g and g + 8.
  // Per (m-tile, k-step) 4 registers: kB1 a0, a1 (code rows g, g + 8) and the
  // same of the complement; kI8 a0..a3 (+-1 bytes).
  uint32_t qf[kMT][kKS][4];
  int cinit[kMT][4];
#pragma unroll
  for (int m = 0; m < kMT; ++m) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int q = 16 * m + g + 8 * h;
      const bool ok = q < nq;
      const uint32_t* qp = a.queries + (q0 + (ok ? q : 0)) * WC;
      int pop = 0;
#pragma unroll
      for (int w = 0; w < WC; ++w) pop += __popc(ok ? __ldg(qp + w) : 0u);
      int c;
      if (!ok) {
        c = -(1 << 24);  // never reaches 0: padding rows are never candidates
      } else if constexpr (V == kMmaB1) {
        c = -thr_score_s[q];
      } else {
        c = W - pop - thr_score_s[q];
      }
      cinit[m][2 * h] = c;
      cinit[m][2 * h + 1] = c;
#pragma unroll
      for (int s = 0; s < kKS; ++s) {
        if constexpr (V == kMmaB1) {
          const int w = 4 * s + t;
          const uint32_t v = (ok && w < WC) ? __ldg(qp + w) : 0u;
          qf[m][s][h] = v;                                      // a0 / a1: the code
          qf[m][s][2 + h] = (ok && w < WC) ? ~v : 0u;           // the complement
        } else {
          const uint32_t v = ok ? __ldg(qp + s) : 0u;
          qf[m][s][h] = ok ? SpreadSigned(v, t) : 0u;           // a0 / a1: k 4t..4t+3
          qf[m][s][2 + h] = ok ? SpreadSigned(v, t + 4) : 0u;   // a2 / a3: k 16+4t..
        }
      }
    }
  }

  uint32_t* base_s = mma_smem + warp * Cfg::kWarpWords;
  uint32_t* code_s = base_s;                               // [2][items * WC]
  uint32_t* mask_s = base_s + 2 * Cfg::kCodeWordsPerBuf;   // [3][kQ][8]
  const bool has_mask = a.mask != nullptr;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x / groups) * kMmaWarps;
  const int64_t gwarp = bx * kMmaWarps + warp;
  const int64_t seg_words = a.word_end - a.word_begin;
  const int64_t nchunks = (seg_words + kMmaChunkWords - 1) / kMmaChunkWords;
  const int64_t my_chunks = gwarp < nchunks ? (nchunks - gwarp + nwarps - 1) / nwarps : 0;
  auto chunk_word = [&](int64_t i) { return a.word_begin + (gwarp + i * nwarps) * kMmaChunkWords; };

  // Mask words of chunk i -> mask buffer i % 3 (lane: word lane % 8 of queries lane / 8 + 4 j).
  auto issue_mask = [&](int64_t i) {
    if (!has_mask || i >= my_chunks) return;
    const int64_t w0 = chunk_word(i);
    uint32_t* dst = mask_s + (i % 3) * Cfg::kMaskWordsPerBuf;
    const int wi = lane & 7;
    const int64_t w = w0 + wi;
#pragma unroll
    for (int j = 0; j < kQ / 4; ++j) {
      const int q = (lane >> 3) + 4 * j;
      const bool in = q < nq && w < a.word_end;
      const uint32_t* src = in ? a.mask + (q0 + q) * a.mask_words + w : a.mask;
      CpAsync<4>(SmemAddr(dst + q * kMmaChunkWords + wi), src, in ? 4 : 0);
    }
  };
  // Union over the block's queries of mask word lane % 8 of chunk i (valid bits
  // and the segment end applied).
  auto union_word = [&](int64_t i) -> uint32_t {
    const int64_t w = chunk_word(i) + (lane & 7);
    uint32_t u = 0xFFFFFFFFu;
    if (has_mask) {
      const uint32_t* src = mask_s + (i % 3) * Cfg::kMaskWordsPerBuf;
      u = 0;
#pragma unroll
      for (int j = 0; j < kQ / 4; ++j) u |= src[((lane >> 3) + 4 * j) * kMmaChunkWords + (lane & 7)];
      u |= __shfl_xor_sync(kFull, u, 8);
      u |= __shfl_xor_sync(kFull, u, 16);
    }
    return w < a.word_end ? u & HammingValidBits(w, a.num_items) : 0u;
  };
  // Codes of chunk i -> code buffer i % 2; items no query wants are zero-filled.
  auto issue_codes = [&](int64_t i, uint32_t u_lane) {
    if (i >= my_chunks) return;
    uint32_t un[kMmaChunkWords];
#pragma unroll
    for (int w = 0; w < kMmaChunkWords; ++w) un[w] = __shfl_sync(kFull, u_lane, w);
    const int64_t item0 = chunk_word(i) * 32;
    const char* src0 = reinterpret_cast<const char*>(a.codes + item0 * WC);
    uint32_t* dst = code_s + (i % 2) * Cfg::kCodeWordsPerBuf;
    constexpr int PB = Cfg::kPieceBytes, PPI = Cfg::kPiecesPerItem;
#pragma unroll
    for (int r = 0; r < 8 * PPI; ++r) {
      const int p = lane + 32 * r;  // piece; item p / PPI
      const int item = p / PPI;
      const bool want = (un[r / PPI] >> (item & 31)) & 1u;  // item >> 5 == r / PPI
      CpAsync<PB>(SmemAddr(reinterpret_cast<char*>(dst) + p * PB),
                  want ? src0 + static_cast<int64_t>(p) * PB : reinterpret_cast<const char*>(a.codes),
                  want ? PB : 0);
    }
  };

  if (my_chunks == 0) return;
  issue_mask(0);
  CpAsyncCommit();
  CpAsyncWaitAll();
  __syncwarp();
  uint32_t un_next = union_word(0);  // lane l: union word l % 8
  issue_codes(0, un_next);
  issue_mask(1);
  CpAsyncCommit();

  for (int64_t i = 0; i < my_chunks; ++i) {
    const uint32_t un_cur = un_next;
    CpAsyncWaitAll();  // codes of chunk i, mask words of chunk i + 1
    __syncwarp();
    if (i + 1 < my_chunks) {
      un_next = union_word(i + 1);
      issue_codes(i + 1, un_next);
      issue_mask(i + 2);
    }
    CpAsyncCommit();

    const int64_t w0 = chunk_word(i);
    const int64_t item0 = w0 * 32;
    const uint32_t* cs = code_s + (i % 2) * Cfg::kCodeWordsPerBuf;
    const uint32_t* ms = mask_s + (i % 3) * Cfg::kMaskWordsPerBuf;
#pragma unroll(V == kMmaB1 ? 2 : 1)
    for (int j = 0; j < kMmaTiles; ++j) {
      const uint32_t uw = __shfl_sync(kFull, un_cur, j >> 2);  // union word of the tile
      if (((uw >> ((j & 3) * 8)) & 0xFFu) == 0u) continue;     // warp-uniform
      const uint32_t* ip = cs + (8 * j + g) * WC;  // this thread's item (column g)
      int acc[kMT][4];
      if constexpr (V == kMmaB1) {
#pragma unroll
        for (int s = 0; s < kKS; ++s) {
          const int w = 4 * s + t;
          const uint32_t b = w < WC ? ip[w] : 0u;
          const uint32_t nb = w < WC ? ~b : 0u;
#pragma unroll
          for (int m = 0; m < kMT; ++m) {
            if (m < mt) {
              MmaB1(acc[m], qf[m][s][0], qf[m][s][1], b, s == 0 ? cinit[m] : acc[m]);
              MmaB1(acc[m], qf[m][s][2], qf[m][s][3], nb, acc[m]);
            }
          }
        }
      } else {
        uint32_t wv[WC];
        if constexpr (WC == 2) {
          const uint2 v = *reinterpret_cast<const uint2*>(ip);
          wv[0] = v.x;
          wv[1] = v.y;
        } else {
#pragma unroll
          for (int h = 0; h < WC / 4; ++h) {
            const uint4 v = reinterpret_cast<const uint4*>(ip)[h];
            wv[4 * h] = v.x;
            wv[4 * h + 1] = v.y;
            wv[4 * h + 2] = v.z;
            wv[4 * h + 3] = v.w;
          }
        }
#pragma unroll
        for (int s = 0; s < kKS; ++s) {
          const uint32_t b0 = SpreadBits(wv[s], t), b1 = SpreadBits(wv[s], t + 4);
#pragma unroll
          for (int m = 0; m < kMT; ++m) {
            if (m < mt) MmaI8(acc[m], qf[m][s], b0, b1, s == 0 ? cinit[m] : acc[m]);
          }
        }
      }
      // Any (query, item) of the tile with score >= its query's threshold score?
      int all = -1;
#pragma unroll
      for (int m = 0; m < kMT; ++m) {
        if (m < mt) all &= acc[m][0] & acc[m][1] & acc[m][2] & acc[m][3];
      }
      if (!__any_sync(kFull, all >= 0)) continue;
      // Rare: exact test (pass bit, key >= threshold key) and append.
      const int wl = j >> 2;  // word of the chunk; uw: its union (valid bits applied)
#pragma unroll
      for (int m = 0; m < kMT; ++m) {
        if (m >= mt) continue;
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int q = 16 * m + g + 8 * (r >> 1);
          const int col = 2 * t + (r & 1);
          const int bit = ((j & 3) * 8) + col;      // item (8 j + col) of word wl
          if (acc[m][r] < 0 || q >= nq) continue;
          uint32_t mw = uw;
          if (has_mask) mw &= ms[q * kMmaChunkWords + wl];
          if (!((mw >> bit) & 1u)) continue;
          const int64_t item = item0 + 8 * j + col;
          const uint64_t key = HammingKey(acc[m][r] + thr_score_s[q], item);
          if (key < thr_key_s[q]) continue;
          const uint32_t slot = atomicAdd(a.cnt + q0 + q, 1u);
          if (slot < static_cast<uint64_t>(a.cap)) {
            a.buf[(q0 + q) * a.cap + slot] = key;
          } else {
            a.flags[0] = 1;
          }
        }
      }
      __syncwarp();  // reconverge before the next tile's mma.sync
    }
    __syncwarp();  // the next chunk's copies overwrite these buffers
  }
  CpAsyncWaitAll();
}

// Peak of the mma instruction a variant uses: each warp runs `iters` rounds of
// 8 independent accumulator chains (register operands only). Writes one value
// per thread to sink (so the compiler keeps the work). mmas issued:
// gridDim.x * blockDim.x / 32 * iters * 8.
template <int V>
__global__ void MmaPeakKernel(int iters, int* sink) {
  const uint32_t x = threadIdx.x * 0x9E3779B9u + blockIdx.x;
  uint32_t af[4] = {x, x ^ 0x55555555u, x * 3u, x ^ 0x0F0F0F0Fu};
  const uint32_t b0 = x ^ 0x33333333u, b1 = x + 7u;
  int acc[8][4];
#pragma unroll
  for (int c = 0; c < 8; ++c) {
#pragma unroll
    for (int r = 0; r < 4; ++r) acc[c][r] = c + r;
  }
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int c = 0; c < 8; ++c) {
      if constexpr (V == kMmaB1) {
        MmaB1(acc[c], af[0], af[1], b0, acc[c]);
      } else {
        MmaI8(acc[c], af, b0, b1, acc[c]);
      }
    }
  }
  int s = 0;
#pragma unroll
  for (int c = 0; c < 8; ++c) s += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
  sink[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

// Launches MmaPeakKernel<variant> (kMmaB1 or kMmaI8) with `blocks` blocks of
// `threads` threads.
inline cudaError_t LaunchMmaPeak(int variant, int blocks, int threads, int iters, int* sink,
                                 cudaStream_t stream) {
  if (blocks <= 0 || threads <= 0 || threads % 32 != 0 || iters <= 0) return cudaErrorInvalidValue;
  if (variant == kMmaB1) {
    MmaPeakKernel<kMmaB1><<<blocks, threads, 0, stream>>>(iters, sink);
  } else if (variant == kMmaI8) {
    MmaPeakKernel<kMmaI8><<<blocks, threads, 0, stream>>>(iters, sink);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

// mma instructions ScanMmaKernel issues per 8-item tile of one block
// (mt m-tiles in use): the number the harness divides by the measured peak.
inline int64_t MmaPerTile(int variant, int wc, int mt) {
  if (variant == kMmaB1) return static_cast<int64_t>(2) * ((wc + 3) / 4) * mt;
  return static_cast<int64_t>(wc) * mt;
}

// Queries per block of ScanMmaKernel.
inline int MmaGroup(int variant, int wc) { return (variant == kMmaI8 && wc == 8) ? 32 : 64; }

template <int WC, int V>
cudaError_t LaunchScanMmaWidth(const ScanArgs& a, int sms, cudaStream_t stream) {
  const int64_t chunks = (a.word_end - a.word_begin + kMmaChunkWords - 1) / kMmaChunkWords;
  if (chunks <= 0) return cudaSuccess;
  constexpr size_t smem = MmaSmemBytes<WC, V>();
  cudaError_t err = cudaFuncSetAttribute(ScanMmaKernel<WC, V>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  int per_sm = 0;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, ScanMmaKernel<WC, V>, kMmaWarps * 32,
                                                smem);
  const int64_t groups = (a.batch + MmaCfg<WC, V>::kQ - 1) / MmaCfg<WC, V>::kQ;
  const int64_t want = (chunks + kMmaWarps - 1) / kMmaWarps;
  const int64_t per_group =
      std::max<int64_t>(1, static_cast<int64_t>(std::max(per_sm, 1)) * sms / groups);
  const int64_t blocks = std::min<int64_t>(want, per_group);
  // Block b of query group q is blockIdx.x = b * groups + q: the groups' blocks
  // of one chunk range run side by side and share its codes through L2.
  ScanMmaKernel<WC, V><<<static_cast<unsigned>(blocks * groups), kMmaWarps * 32, smem, stream>>>(
      a, static_cast<int>(groups));
  return cudaGetLastError();
}

template <int V>
cudaError_t LaunchScanMma(const ScanArgs& a, int wc, int sms, cudaStream_t stream) {
  switch (wc) {
    case 2: return LaunchScanMmaWidth<2, V>(a, sms, stream);
    case 4: return LaunchScanMmaWidth<4, V>(a, sms, stream);
    case 8: return LaunchScanMmaWidth<8, V>(a, sms, stream);
    default: return cudaErrorInvalidValue;
  }
}

// The variant a call runs: `requested` if not kMmaAuto, else the environment
// variable LINR_HAMMING_MMA ("b1", "i8" or "off"), else kMmaB1; kMmaOff (the
// CUDA-core kernels) when the shape has no tensor-core path (B < 8, or Wc not
// in {2, 4, 8} with aligned codes: FixedWidth).
inline int ResolveMmaVariant(int requested, int64_t batch, int wc) {
  int v = requested;
  if (v == kMmaAuto) {
    v = kMmaB1;
    if (const char* e = std::getenv("LINR_HAMMING_MMA")) {
      if (std::strcmp(e, "i8") == 0) v = kMmaI8;
      else if (std::strcmp(e, "off") == 0) v = kMmaOff;
      else if (std::strcmp(e, "b1") == 0) v = kMmaB1;
    }
  }
  if (batch < kMmaMinBatch || !(wc == 2 || wc == 4 || wc == 8)) return kMmaOff;
  return v == kMmaB1 || v == kMmaI8 ? v : kMmaOff;
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
// `stream` once (overflow flag). `variant` (MmaVariant) picks the scan kernel
// for B >= kMmaMinBatch (ResolveMmaVariant); all variants return the same
// results.
inline cudaError_t LaunchHammingTopK(const int32_t* query_codes, const int32_t* item_codes,
                                     const int32_t* mask, int64_t batch, int64_t num_items,
                                     int64_t words, int64_t k, void* workspace,
                                     size_t workspace_bytes, float* out_scores,
                                     int32_t* out_idx, int32_t* out_count, cudaStream_t stream,
                                     int variant = kMmaAuto) {
  if (k <= 0 || words <= 0 || num_items < 0 || batch < 0 ||
      num_items > std::numeric_limits<int32_t>::max()) {
    return cudaErrorInvalidValue;
  }
  if (batch == 0) return cudaSuccess;
  const int64_t k_eff = std::min(k, num_items);
  const TopKOutputs out{out_scores, out_idx, out_count};
  if (k_eff == 0) return select_gpu::LaunchFillEmpty(batch, k, out, stream);
  if (k_eff > kMaxK) return cudaErrorInvalidValue;
  const Layout lay = MakeLayout(batch, k_eff);
  if (workspace_bytes < lay.total) return cudaErrorInvalidValue;
  const select_gpu::SelectState<uint32_t> st = select_gpu::SelectStateAt<uint32_t>(workspace, lay);
  int device = 0, sms = 0;
  cudaError_t err;
  if ((err = cudaGetDevice(&device)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess) {
    return err;
  }
  const int64_t mask_words = (num_items + 31) / 32;
  const int wc = FixedWidth(item_codes, words);
  const int mma = ResolveMmaVariant(variant, batch, wc);

  ScanArgs a;
  a.queries = reinterpret_cast<const uint32_t*>(query_codes);
  a.codes = reinterpret_cast<const uint32_t*>(item_codes);
  a.mask = reinterpret_cast<const uint32_t*>(mask);
  a.batch = batch;
  a.num_items = num_items;
  a.words = words;
  a.mask_words = mask_words;
  a.buf = st.buf;
  a.thr = st.thr;
  a.cnt = st.cnt;
  a.flags = st.flags;
  a.cap = st.cap;

  return select_gpu::RunSegmentedSelect<uint32_t, HammingKeyCodec>(
      st, batch, mask_words, k_eff, k, out, stream, [&](int64_t begin, int64_t end) {
        a.word_begin = begin;
        a.word_end = end;
        if (mma == kMmaB1) return LaunchScanMma<kMmaB1>(a, wc, sms, stream);
        if (mma == kMmaI8) return LaunchScanMma<kMmaI8>(a, wc, sms, stream);
        return LaunchScan(a, wc, sms, stream);
      });
}

}  // namespace hamming_gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_GPU_CU_H_
