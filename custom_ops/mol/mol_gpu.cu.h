// CUDA kernel of LinrMoLTopK (no TensorFlow; raw device pointers and a
// cudaStream_t). Scoring is mol_common.h (the same code as the CPU scan);
// selection is the shared segmented selection (select/select_gpu.cu.h).
//
// Scan: a block (4 warps) takes one mask word = 32 items at a time. It ORs
// the word over the batch and skips the tile when no query lets any of its
// items pass; otherwise it copies the 32 items' Q x d values (contiguous in
// memory: coalesced reads, the only pass over the item store) into shared
// memory as float32 (row stride Q*d + 1: no bank conflicts), then warp w
// scores lane i = item i of the tile for queries b = w, w + 4, ...: the P*Q
// dot products, the gate and the mixture, never written out; a key that
// reaches the query's threshold is appended to its candidate buffer
// (warp-aggregated atomics).
#ifndef LINR_CUSTOM_OPS_MOL_MOL_GPU_CU_H_
#define LINR_CUSTOM_OPS_MOL_MOL_GPU_CU_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "custom_ops/mol/mol_common.h"
#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "custom_ops/select/select_gpu.cu.h"

namespace linr {
namespace mol_gpu {

using select_gpu::kMaxK;
constexpr int kWarps = 4;
constexpr uint32_t kFull = 0xffffffffu;
constexpr size_t kMaxSharedBytes = 227 * 1024;

// Keys: the float score's order-preserving bits above ~index (rank order of
// ordering.h: score descending, ties by smaller index; NaN as -inf).
__device__ __forceinline__ uint64_t MakeKey(float score, int64_t index) {
  float s = RankableScore(score) + 0.0f;
  uint32_t b = __float_as_uint(s);
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (static_cast<uint64_t>(b) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(index));
}

struct MoLKeyCodec {
  __device__ static float Score(uint64_t key) {
    uint32_t b = static_cast<uint32_t>(key >> 32);
    b = (b & 0x80000000u) ? (b & 0x7fffffffu) : ~b;
    return __uint_as_float(b);
  }
  __device__ static int32_t Index(uint64_t key) {
    return static_cast<int32_t>(~static_cast<uint32_t>(key));
  }
};

struct Layout : select_gpu::SelectLayout {
  size_t total = 0;
};

inline Layout MakeLayout(int64_t batch, int64_t k_eff) {
  Layout l;
  l.total = select_gpu::LayoutSelect(batch, k_eff, &l);
  return l;
}

inline size_t MoLWorkspaceBytes(int64_t batch, int64_t num_items, int64_t k) {
  const int64_t k_eff = std::max<int64_t>(1, std::min(k, num_items));
  return std::max<size_t>(MakeLayout(std::max<int64_t>(batch, 1), k_eff).total, 256);
}

inline size_t TileSharedBytes(int64_t q, int64_t dim) {
  return sizeof(float) * 32 * static_cast<size_t>(q * dim + 1);
}

struct ScanArgs {
  const float* queries;      // [B, P, d]
  const void* items;         // [N, Q, d]
  const float* gate_bias;    // [B, PQ]
  const float* gate_weight;  // [PQ, PQ]
  const uint32_t* mask;      // [B, mask_words] or nullptr
  int64_t batch, p, q, dim, num_items, mask_words;
  int64_t word_begin, word_end;
  bool softmax;
  uint64_t* buf;
  const uint64_t* thr;
  uint32_t* cnt;
  int32_t* flags;
  int64_t cap;
};

__device__ __forceinline__ void Append(const ScanArgs& a, int64_t b, bool want, uint64_t key,
                                       int lane) {
  const uint32_t bits = __ballot_sync(kFull, want);
  if (bits == 0u) return;
  const int leader = __ffs(bits) - 1;
  uint32_t base = 0;
  if (lane == leader) base = atomicAdd(a.cnt + b, static_cast<uint32_t>(__popc(bits)));
  base = __shfl_sync(kFull, base, leader);
  if (want) {
    const uint32_t slot = base + static_cast<uint32_t>(__popc(bits & ((1u << lane) - 1u)));
    if (slot < static_cast<uint64_t>(a.cap)) {
      a.buf[b * a.cap + slot] = key;
    } else {
      a.flags[0] = 1;  // overflow: the driver reruns in safe mode
    }
  }
}

template <typename L>
__global__ void __launch_bounds__(kWarps * 32) MoLScanKernel(ScanArgs a) {
  extern __shared__ float tile[];
  __shared__ uint32_t any_s;
  using S = typename L::Storage;
  const S* items = static_cast<const S*>(a.items);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = a.q * a.dim, stride = row + 1;
  const int pq = static_cast<int>(a.p * a.q);
  for (int64_t w = a.word_begin + blockIdx.x; w < a.word_end; w += gridDim.x) {
    if (threadIdx.x == 0) any_s = 0u;
    __syncthreads();
    uint32_t mine = 0u;
    for (int64_t b = threadIdx.x; b < a.batch; b += blockDim.x) {
      mine |= a.mask ? a.mask[b * a.mask_words + w] : kFull;
    }
    if (mine) atomicOr(&any_s, mine);
    __syncthreads();
    const int64_t here = min(static_cast<int64_t>(32), a.num_items - w * 32);
    uint32_t any = any_s;
    if (here < 32) any &= (1u << here) - 1u;
    if (any != 0u) {
      const S* base = items + w * 32 * row;
      for (int64_t e = threadIdx.x; e < here * row; e += blockDim.x) {
        tile[(e / row) * stride + e % row] = L::Load(base, e);
      }
      __syncthreads();
      const bool item_ok = lane < here;
      float x[mol::kMaxPairs];
      for (int64_t b = warp; b < a.batch; b += kWarps) {
        const uint32_t bits = a.mask ? a.mask[b * a.mask_words + w] : kFull;
        bool want = false;
        uint64_t key = 0;
        if (item_ok && ((bits >> lane) & 1u)) {
          const float* qb = a.queries + b * a.p * a.dim;
          const float* e = tile + lane * stride;
          for (int64_t p = 0; p < a.p; ++p) {
            for (int64_t q = 0; q < a.q; ++q) {
              x[p * a.q + q] = mol::Dot(qb + p * a.dim, e + q * a.dim, a.dim);
            }
          }
          const float s = mol::Mix(x, pq, a.gate_bias + b * pq, a.gate_weight, a.softmax);
          key = MakeKey(s, w * 32 + lane);
          want = key >= a.thr[b];
        }
        Append(a, b, want, key, lane);
      }
    }
    __syncthreads();
  }
}

template <typename L>
cudaError_t LaunchScanTyped(const ScanArgs& a, int sms, cudaStream_t stream) {
  const size_t smem = TileSharedBytes(a.q, a.dim);
  cudaError_t err = cudaFuncSetAttribute(MoLScanKernel<L>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  const int64_t words = a.word_end - a.word_begin;
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(words, 16LL * sms));
  MoLScanKernel<L><<<static_cast<unsigned>(blocks), kWarps * 32, smem, stream>>>(a);
  return cudaGetLastError();
}

// Runs LinrMoLTopK on `stream`. item_type: 0 float32, 1 float16, 2 bfloat16.
// Returns cudaErrorInvalidValue for bad sizes, min(k, N) > kMaxK or a tile
// (32 x Q x d float32) beyond shared memory. Synchronises `stream` once.
inline cudaError_t LaunchMoLTopK(const float* queries, const void* items, const float* gate_bias,
                                 const float* gate_weight, const int32_t* mask, int item_type,
                                 int64_t batch, int64_t p, int64_t q, int64_t dim,
                                 int64_t num_items, int64_t k, bool softmax, void* workspace,
                                 size_t workspace_bytes, const TopKOutputs& out,
                                 cudaStream_t stream) {
  if (k <= 0 || p < 1 || q < 1 || p > mol::kMaxComponents || q > mol::kMaxComponents ||
      num_items < 0 || batch < 0 || num_items > std::numeric_limits<int32_t>::max() ||
      TileSharedBytes(q, dim) > kMaxSharedBytes) {
    return cudaErrorInvalidValue;
  }
  if (batch == 0) return cudaSuccess;
  const int64_t k_eff = std::min(k, num_items);
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
  ScanArgs a;
  a.queries = queries;
  a.items = items;
  a.gate_bias = gate_bias;
  a.gate_weight = gate_weight;
  a.mask = reinterpret_cast<const uint32_t*>(mask);
  a.batch = batch;
  a.p = p;
  a.q = q;
  a.dim = dim;
  a.num_items = num_items;
  a.mask_words = (num_items + 31) / 32;
  a.softmax = softmax;
  a.buf = st.buf;
  a.thr = st.thr;
  a.cnt = st.cnt;
  a.flags = st.flags;
  a.cap = st.cap;
  return select_gpu::RunSegmentedSelect<uint32_t, MoLKeyCodec>(
      st, batch, a.mask_words, k_eff, k, out, stream, [&](int64_t begin, int64_t end) {
        a.word_begin = begin;
        a.word_end = end;
        switch (item_type) {
          case 1: return LaunchScanTyped<mol::LoadF16>(a, sms, stream);
          case 2: return LaunchScanTyped<mol::LoadBF16>(a, sms, stream);
          default: return LaunchScanTyped<mol::LoadF32>(a, sms, stream);
        }
      });
}

}  // namespace mol_gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_MOL_MOL_GPU_CU_H_
