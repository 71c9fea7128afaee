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
//               and the chunk's mask words in shared memory).
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
        return LaunchScan(a, wc, sms, stream);
      });
}

}  // namespace hamming_gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_QUANTIZATION_HAMMING_GPU_CU_H_
