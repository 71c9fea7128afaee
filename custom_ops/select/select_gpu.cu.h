// Block-level top-k selection over per-query candidate buffers of 64-bit keys,
// shared by the CUDA top-k kernels (topk/topk_gpu.cu.h: float scores;
// quantization/hamming_gpu.cu.h: matching-bit scores). Raw device pointers and a
// cudaStream_t, no TensorFlow.
//
// Keys: every candidate is a uint64 key whose order is the rank order of
// ordering.h (RanksBefore: score descending, ties by smaller index), with
// all keys of one query distinct; the low 32 bits are ~index. How the high
// bits encode the score is the caller's: a key codec `Codec` with
//   __device__ static float Score(uint64_t key);
//   __device__ static int32_t Index(uint64_t key);
// turns a surviving key back into the op's outputs.
//
// Protocol. Per query the workspace holds a candidate buffer of `cap` keys, a
// threshold key and a count (`Count`: int32_t or uint32_t, whatever the scan
// kernel's atomicAdd uses), plus one overflow flag for all queries. The
// caller's scan kernel appends each candidate whose key is >= the query's
// threshold (atomicAdd on the count; a slot >= cap sets flags[0]). Rows are
// streamed in segments of 32-row units (tiles / mask words) of growing size;
// after each segment PruneKernel (one block per query) radix-selects the k-th
// best key of a buffer holding more than k, keeps exactly those k and raises
// the threshold to it; after the last segment it sorts the k survivors
// (bitonic, shared memory) and writes scores / indices (k_out columns, padding
// -inf / -1) and the count. RunSegmentedSelect drives that loop: segment sizes
// grow by (cap - k) / (2k), so that for rows in random order a segment's
// admissions stay well under the buffer's capacity; an overflow (adversarial
// orders only) is flagged and the whole call reruns with segments of
// (cap - k) rows, which cannot overflow. It synchronises the stream once, to
// read that flag.
#ifndef LINR_CUSTOM_OPS_SELECT_SELECT_GPU_CU_H_
#define LINR_CUSTOM_OPS_SELECT_SELECT_GPU_CU_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"

namespace linr {
namespace select_gpu {

constexpr int64_t kMaxK = 16384;  // final sort in shared memory (8 bytes a key)
constexpr int kSelectThreads = 1024;

// ---------------------------------------------------------------------------
// Workspace.
inline size_t AlignUp(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

// Keys per query buffer for k survivors.
inline int64_t CandidateCapacity(int64_t k) {
  // Large enough that segments grow ~15x (few prunes), see RunSegmentedSelect.
  const int64_t cap = std::max<int64_t>(16 * k, 65536);
  return (cap + 1023) / 1024 * 1024;
}

// Byte offsets of the selection state in the workspace.
struct SelectLayout {
  int64_t cap = 0;
  size_t buf = 0, thr = 0, cnt = 0, flags = 0;
};

// Lays out buf [batch][cap] keys, thr [batch] keys, cnt [batch] (4-byte
// counts) and flags [4] from offset 0, for k_eff (>= 1) survivors; returns the
// (aligned) end offset, where a caller may place more buffers.
inline size_t LayoutSelect(int64_t batch, int64_t k_eff, SelectLayout* l) {
  l->cap = CandidateCapacity(std::max<int64_t>(k_eff, 1));
  size_t off = 0;
  l->buf = off;
  off = AlignUp(off + sizeof(uint64_t) * batch * l->cap);
  l->thr = off;
  off = AlignUp(off + sizeof(uint64_t) * batch);
  l->cnt = off;
  off = AlignUp(off + sizeof(uint32_t) * batch);
  l->flags = off;
  off = AlignUp(off + sizeof(int32_t) * 4);
  return off;
}

// The workspace of a scorer that needs only the selection state (the
// asymmetric 1-bit and MoL ops): LayoutSelect, at least 256 bytes.
struct SelectOnlyLayout : SelectLayout {
  size_t total = 0;
};
inline SelectOnlyLayout MakeSelectOnlyLayout(int64_t batch, int64_t k_eff) {
  SelectOnlyLayout l;
  l.total = LayoutSelect(batch, k_eff, &l);
  return l;
}
inline size_t SelectOnlyWorkspaceBytes(int64_t batch, int64_t num_items, int64_t k) {
  const int64_t k_eff = std::max<int64_t>(1, std::min(k, num_items));
  return std::max<size_t>(MakeSelectOnlyLayout(std::max<int64_t>(batch, 1), k_eff).total, 256);
}

// Keys of float scores: the score's order-preserving bits above ~index
// (ordering.h: score descending, ties by smaller index; NaN as -inf, -0 as
// +0), and the codec RunSegmentedSelect decodes them with.
__device__ __forceinline__ uint64_t FloatKey(float score, int64_t index) {
  const float s = RankableScore(score) + 0.0f;
  uint32_t b = __float_as_uint(s);
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (static_cast<uint64_t>(b) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(index));
}
struct FloatKeyCodec {
  __device__ static float Score(uint64_t key) {
    uint32_t b = static_cast<uint32_t>(key >> 32);
    b = (b & 0x80000000u) ? (b & 0x7fffffffu) : ~b;
    return __uint_as_float(b);
  }
  __device__ static int32_t Index(uint64_t key) {
    return static_cast<int32_t>(~static_cast<uint32_t>(key));
  }
};

// Device pointers of the selection state.
template <typename Count>
struct SelectState {
  uint64_t* buf;
  uint64_t* thr;
  Count* cnt;
  int32_t* flags;
  int64_t cap;
};

template <typename Count>
inline SelectState<Count> SelectStateAt(void* workspace, const SelectLayout& l) {
  static_assert(sizeof(Count) == sizeof(uint32_t), "counts are 4 bytes (LayoutSelect)");
  char* ws = static_cast<char*>(workspace);
  SelectState<Count> s;
  s.buf = reinterpret_cast<uint64_t*>(ws + l.buf);
  s.thr = reinterpret_cast<uint64_t*>(ws + l.thr);
  s.cnt = reinterpret_cast<Count*>(ws + l.cnt);
  s.flags = reinterpret_cast<int32_t*>(ws + l.flags);
  s.cap = l.cap;
  return s;
}

// ---------------------------------------------------------------------------
// Block primitives (the whole block calls; blockDim.x a multiple of 32, at
// most kSelectThreads).

// Keys a thread loads per step of the block-wide loops below: independent
// loads in flight, which is what bounds one block's pass over an L2-resident
// buffer (one block per query reads up to `cap` keys several times).
constexpr int kKeysPerStep = 8;

// v[j] = data[c + j * blockDim.x + threadIdx.x], or `fill` past n.
__device__ __forceinline__ void LoadStep(const uint64_t* data, int64_t n, int64_t c,
                                         uint64_t fill, uint64_t (&v)[kKeysPerStep]) {
#pragma unroll
  for (int j = 0; j < kKeysPerStep; ++j) {
    const int64_t i = c + j * blockDim.x + threadIdx.x;
    v[j] = i < n ? data[i] : fill;
  }
}

// k-th largest key (1-based) among data[0, n) (n >= k >= 1), by an 8-bit-digit
// radix select from the top byte down. Each warp counts into its own
// histogram, lanes holding the same digit add once (__match_any_sync): keys of
// close scores share their top digits, and one shared histogram would
// serialise on those bins. Stops as soon as the chosen digit's bin holds
// exactly the keys still needed: the k-th is then the smallest key of that
// bin (usually after two or three digits instead of eight).
__device__ inline uint64_t BlockSelectKth(const uint64_t* data, int64_t n, int64_t k) {
  __shared__ uint32_t hist[kSelectThreads / 32][256];
  __shared__ uint32_t digit_s;
  __shared__ int64_t need_s;
  __shared__ int exact_s;
  __shared__ unsigned long long min_s;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nw = blockDim.x >> 5;
  const int64_t step = static_cast<int64_t>(blockDim.x) * kKeysPerStep;
  uint64_t prefix = 0, known = 0;
  int64_t need = k;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < nw * 256; i += blockDim.x) (&hist[0][0])[i] = 0u;
    if (threadIdx.x == 0) {
      exact_s = 0;
      min_s = ~0ull;
    }
    __syncthreads();
    for (int64_t c = 0; c < n; c += step) {  // uniform trip count: whole warps
      uint64_t v[kKeysPerStep];
      LoadStep(data, n, c, 0, v);
#pragma unroll
      for (int j = 0; j < kKeysPerStep; ++j) {
        const int64_t i = c + j * blockDim.x + threadIdx.x;
        const bool in = i < n && (v[j] & known) == prefix;
        const uint32_t bin = in ? static_cast<uint32_t>((v[j] >> shift) & 255u) : 256u + lane;
        const uint32_t same = __match_any_sync(0xffffffffu, bin);
        if (in && lane == __ffs(same) - 1) atomicAdd(&hist[warp][bin], __popc(same));
      }
    }
    __syncthreads();
    for (int b = threadIdx.x; b < 256; b += blockDim.x) {  // column b is this thread's
      uint32_t total = 0;
      for (int w = 0; w < nw; ++w) total += hist[w][b];
      hist[0][b] = total;
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane L owns digits 255 - 8L down to 248 - 8L (descending order).
      uint32_t h[8];
      uint32_t sum = 0;
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        h[t] = hist[0][255 - 8 * lane - t];
        sum += h[t];
      }
      uint32_t incl = sum;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const uint32_t v = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += v;
      }
      int64_t before = static_cast<int64_t>(incl - sum);
      if (before < need && before + static_cast<int64_t>(sum) >= need) {
#pragma unroll
        for (int t = 0; t < 8; ++t) {
          if (before + h[t] >= need) {
            digit_s = static_cast<uint32_t>(255 - 8 * lane - t);
            need_s = need - before;
            exact_s = before + h[t] == need;
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
    if (exact_s) {  // every key of this bin is needed: the k-th is their minimum
      unsigned long long lo = ~0ull;
      for (int64_t c = 0; c < n; c += step) {
        uint64_t v[kKeysPerStep];
        LoadStep(data, n, c, ~0ull, v);
#pragma unroll
        for (int j = 0; j < kKeysPerStep; ++j) {
          if ((v[j] & known) == prefix && v[j] < lo) lo = v[j];
        }
      }
      for (int o = 16; o > 0; o >>= 1) {
        const unsigned long long u = __shfl_xor_sync(0xffffffffu, lo, o);
        lo = u < lo ? u : lo;
      }
      if (lane == 0) atomicMin(&min_s, lo);
      __syncthreads();
      const uint64_t kth = min_s;
      __syncthreads();
      return kth;
    }
    __syncthreads();
  }
  return prefix;
}

// Copies the keys >= kth of data[0, n) to out (shared memory, room for all
// survivors), in no particular order; returns how many.
__device__ inline int64_t BlockCompactTo(const uint64_t* data, int64_t n, uint64_t kth,
                                         uint64_t* out) {
  __shared__ unsigned int out_n;
  const int lane = threadIdx.x & 31;
  if (threadIdx.x == 0) out_n = 0u;
  __syncthreads();
  const int64_t step = static_cast<int64_t>(blockDim.x) * kKeysPerStep;
  for (int64_t c = 0; c < n; c += step) {
    uint64_t v[kKeysPerStep];
    LoadStep(data, n, c, 0, v);
#pragma unroll
    for (int j = 0; j < kKeysPerStep; ++j) {
      const int64_t i = c + j * blockDim.x + threadIdx.x;
      const bool keep = i < n && v[j] >= kth;
      const uint32_t b = __ballot_sync(0xffffffffu, keep);
      unsigned int base = 0;
      if (lane == 0 && b != 0u) base = atomicAdd(&out_n, static_cast<unsigned int>(__popc(b)));
      base = __shfl_sync(0xffffffffu, base, 0);
      if (keep) out[base + __popc(b & ((1u << lane) - 1u))] = v[j];
    }
  }
  __syncthreads();
  return static_cast<int64_t>(out_n);
}

// Sorts s[0, p) descending in shared memory; p a power of two.
__device__ inline void BlockBitonicSortDesc(uint64_t* s, int64_t p) {
  for (int64_t size = 2; size <= p; size <<= 1) {
    for (int64_t stride = size >> 1; stride > 0; stride >>= 1) {
      for (int64_t i = threadIdx.x; i < p; i += blockDim.x) {
        const int64_t j = i ^ stride;
        if (j > i) {
          const bool desc = (i & size) == 0;
          const uint64_t x = s[i], y = s[j];
          if (desc ? x < y : x > y) {
            s[i] = y;
            s[j] = x;
          }
        }
      }
      __syncthreads();
    }
  }
}

// ---------------------------------------------------------------------------
// Kernels.

// One block per query: a buffer holding more than k keys keeps its best k and
// the threshold rises to the k-th; with `final_pass`, the survivors are sorted
// and written (k_out columns, padding -inf / -1) with their count. Dynamic
// shared memory: 8 * (k rounded up to a power of two) bytes on the final pass.
template <typename Count, typename Codec>
__global__ void __launch_bounds__(kSelectThreads)
    PruneKernel(uint64_t* buf, Count* cnt, uint64_t* thr, int64_t cap, int64_t k,
                bool final_pass, int64_t k_out, float* out_scores, int32_t* out_idx,
                int32_t* out_count) {
  extern __shared__ uint64_t sort_s[];  // k rounded up to a power of two
  const int64_t q = blockIdx.x;
  uint64_t* data = buf + q * cap;
  int64_t n = min(static_cast<int64_t>(cnt[q]), cap);
  if (n > k) {
    const uint64_t kth = BlockSelectKth(data, n, k);
    n = BlockCompactTo(data, n, kth, sort_s);  // == k: keys are distinct
    if (threadIdx.x == 0) {
      cnt[q] = static_cast<Count>(n);
      thr[q] = kth;
    }
    if (!final_pass) {
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) data[i] = sort_s[i];
      return;
    }
  } else {
    if (!final_pass) return;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sort_s[i] = data[i];
  }
  int64_t p = 1;
  while (p < n) p <<= 1;
  for (int64_t i = n + threadIdx.x; i < p; i += blockDim.x) sort_s[i] = 0;
  __syncthreads();
  BlockBitonicSortDesc(sort_s, p);
  const float neg_inf = -__int_as_float(0x7f800000);
  for (int64_t i = threadIdx.x; i < k_out; i += blockDim.x) {
    if (i < n) {
      out_scores[q * k_out + i] = Codec::Score(sort_s[i]);
      out_idx[q * k_out + i] = Codec::Index(sort_s[i]);
    } else {
      out_scores[q * k_out + i] = neg_inf;
      out_idx[q * k_out + i] = -1;
    }
  }
  if (threadIdx.x == 0) out_count[q] = static_cast<int32_t>(n);
}

// Outputs of queries with no candidate at all (k_eff == 0): -inf / -1 / 0.
// A template so that every translation unit including this header has its own
// instance (the host stub of a non-template kernel would be defined twice).
template <int kUnused = 0>
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

inline cudaError_t LaunchFillEmpty(int64_t batch, int64_t k_out, const TopKOutputs& out,
                                   cudaStream_t stream) {
  FillEmptyKernel<><<<64, 256, 0, stream>>>(batch, k_out, out.scores, out.idx, out.count);
  return cudaGetLastError();
}

// ---------------------------------------------------------------------------
// Driver.

// Streams `units` 32-row units in segments, `scan(begin, end)` launching the
// caller's scan of units [begin, end) on `stream` (returns its cudaError_t),
// each followed by a prune; the last prune writes the outputs. The first
// segment has min(first_rows, cap) rows (cap when first_rows is 0); segments
// grow by at most `max_growth` when it is > 0. 1 <= k_eff <=
// kMaxK; k_out >= k_eff columns. Reruns in safe mode on overflow (see top).
template <typename Count, typename Codec, typename ScanFn>
cudaError_t RunSegmentedSelect(const SelectState<Count>& st, int64_t batch, int64_t units,
                               int64_t k_eff, int64_t k_out, const TopKOutputs& out,
                               cudaStream_t stream, ScanFn&& scan, int64_t first_rows = 0,
                               int64_t max_growth = 0) {
  int64_t p = 1;
  while (p < k_eff) p <<= 1;
  const size_t sort_smem = sizeof(uint64_t) * static_cast<size_t>(p);
  cudaError_t err = cudaFuncSetAttribute(PruneKernel<Count, Codec>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(sort_smem));
  if (err != cudaSuccess) return err;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool safe = attempt == 1;
    cudaMemsetAsync(st.cnt, 0, sizeof(Count) * batch, stream);
    cudaMemsetAsync(st.thr, 0, sizeof(uint64_t) * batch, stream);
    cudaMemsetAsync(st.flags, 0, sizeof(int32_t) * 4, stream);
    // In units: the first segment (cap rows) cannot overflow an empty buffer;
    // a safe segment adds at most cap - k rows to k survivors.
    // `first_rows` (<= cap, default cap) shortens it: a scorer whose
    // admissions cost more than an append (exact rescoring) admits every row
    // of the first segment, whose threshold is the smallest key.
    const int64_t first_cap = first_rows > 0 ? std::min<int64_t>(first_rows, st.cap) : st.cap;
    const int64_t first = std::max<int64_t>(1, first_cap / 32);
    const int64_t safe_seg = std::max<int64_t>(1, (st.cap - k_eff) / 32);
    // The threshold is fixed during a segment (the k-th best of the E rows
    // before it), so for rows in random order a segment of L rows admits about
    // L k / E keys: L = E (cap - k) / 2k fills half the free room. (Measured:
    // a geometric schedule overflowed at 100M rows and fell back to safe mode.)
    // `max_growth` (> 0) caps the growth: shorter segments admit fewer pairs
    // (about k * growth per segment) at the price of more prunes.
    int64_t growth = std::max<int64_t>(2, (st.cap - k_eff) / (2 * k_eff));
    if (max_growth > 0) growth = std::max<int64_t>(2, std::min(growth, max_growth));
    int64_t begin = 0, seg = first;
    while (begin < units) {
      const int64_t end = std::min(units, begin + seg);
      if ((err = scan(begin, end)) != cudaSuccess) return err;
      const bool last = end >= units;
      PruneKernel<Count, Codec>
          <<<static_cast<unsigned>(batch), kSelectThreads, sort_smem, stream>>>(
              st.buf, st.cnt, st.thr, st.cap, k_eff, last, k_out, out.scores, out.idx,
              out.count);
      if ((err = cudaGetLastError()) != cudaSuccess) return err;
      begin = end;
      seg = safe ? safe_seg : std::max<int64_t>(1, end * growth);
    }
    int32_t overflow = 0;
    if ((err = cudaMemcpyAsync(&overflow, st.flags, sizeof(int32_t), cudaMemcpyDeviceToHost,
                               stream)) != cudaSuccess) {
      return err;
    }
    if ((err = cudaStreamSynchronize(stream)) != cudaSuccess) return err;
    if (!overflow) break;
  }
  return cudaSuccess;
}

}  // namespace select_gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_SELECT_GPU_CU_H_
