// CUDA kernel of LinrMoLTopK (no TensorFlow; raw device pointers and a
// cudaStream_t). Scoring is mol_common.h (the same code as the CPU scan);
// selection is the shared segmented selection (select/select_gpu.cu.h).
//
// Two scans. The item-parallel one (below; P = Q in {1, 2, 4, 8}, d % 8 == 0)
// gives each thread one item for every query. The generic tile scan (any P,
// Q, d): a block (4 warps) takes one mask word = 32 items at a time. It ORs
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

#include <cuda_fp16.h>
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

// Keys and workspace: the shared selection's (select/select_gpu.cu.h).
using select_gpu::FloatKeyCodec;
inline size_t MoLWorkspaceBytes(int64_t batch, int64_t num_items, int64_t k) {
  return select_gpu::SelectOnlyWorkspaceBytes(batch, num_items, k);
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
          key = select_gpu::FloatKey(s, w * 32 + lane);
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

// ---------------------------------------------------------------------------
// Item-parallel scan.
//
// One thread scores one item against every query of the batch: a warp takes
// one mask word (32 consecutive items), skips it when no query passes any of
// them, and each lane reads its item's Q x d values once per query with
// 16-byte loads (the first query's read comes from HBM, the others mostly
// from L1). The queries, the gate bias and the gate weight sit in shared
// memory as float32, read by broadcast. P and Q are compile-time (P = Q in
// {1, 2, 4, 8}), so the P*Q dot products, the gate logits and the mixture live
// in registers; the generic tile scan (runtime P, Q, any d) keeps the rest.
//
// Numerics are the CPU's (mol_common.h): each dot product keeps 8 partial
// sums over j = t, t + 8, ... reduced in the canonical order, then Mix's
// order for the gate and the mixture; halves and bfloat16 widen exactly.

constexpr int kItemScanThreads = 256;
constexpr size_t kItemScanMaxShared = 96 * 1024;

// Eight consecutive item values as float32 (16- or 32-byte aligned loads).
template <typename L>
struct Load8;
template <>
struct Load8<mol::LoadF32> {
  __device__ __forceinline__ static void Get(const float* p, float* v) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  }
};
template <>
struct Load8<mol::LoadF16> {
  __device__ __forceinline__ static void Get(const uint16_t* p, float* v) {
    const uint4 w = __ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {  // cvt.f32.f16: exact, as mol::HalfToFloat
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u[i]));
      v[2 * i] = f.x;
      v[2 * i + 1] = f.y;
    }
  }
};
template <>
struct Load8<mol::LoadBF16> {
  __device__ __forceinline__ static void Get(const uint16_t* p, float* v) {
    const uint4 w = __ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = __uint_as_float(u[i] << 16);
      v[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
  }
};

// Mix (mol_common.h) with PQ known at compile time: the same operations in
// the same order, in registers.
template <int PQ>
__device__ __forceinline__ float MixFixed(const float* x, const float* bias, const float* weight,
                                          bool softmax) {
  float l[PQ];
#pragma unroll
  for (int j = 0; j < PQ; ++j) l[j] = bias[j];
#pragma unroll
  for (int i = 0; i < PQ; ++i) {
#pragma unroll
    for (int j = 0; j < PQ; ++j) l[j] = fmaf(x[i], weight[i * PQ + j], l[j]);
  }
  if (!softmax) {
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < PQ; ++j) s = fmaf(l[j], x[j], s);
    return s;
  }
  float top = l[0];
#pragma unroll
  for (int j = 1; j < PQ; ++j) top = l[j] > top ? l[j] : top;
  float z = 0.f, s = 0.f;
#pragma unroll
  for (int j = 0; j < PQ; ++j) {
    const float e = mol::Exp(l[j] - top);
    z += e;
    s = fmaf(e, x[j], s);
  }
  return s / z;
}

inline size_t ItemScanSharedBytes(int64_t batch, int64_t p, int64_t q, int64_t dim) {
  return sizeof(float) * static_cast<size_t>(batch * p * dim + batch * p * q + p * q * p * q);
}

// Whether the item-parallel scan takes this call: P = Q in {1, 2, 4, 8}, d a
// multiple of 8, 16-byte aligned rows and the batch's queries in shared memory.
inline bool ItemScanApplies(const void* items, int item_type, int64_t batch, int64_t p, int64_t q,
                            int64_t dim) {
  const int64_t elem = item_type == 0 ? 4 : 2;
  return p == q && (p == 1 || p == 2 || p == 4 || p == 8) && dim % 8 == 0 &&
         (reinterpret_cast<uintptr_t>(items) % 16) == 0 && (q * dim * elem) % 16 == 0 &&
         ItemScanSharedBytes(batch, p, q, dim) <= kItemScanMaxShared;
}

template <typename L, int P, int Q>
__global__ void __launch_bounds__(kItemScanThreads) MoLItemScanKernel(ScanArgs a) {
  constexpr int PQ = P * Q;
  extern __shared__ float smem_f[];
  using S = typename L::Storage;
  const int64_t dim = a.dim, batch = a.batch;
  float* qs = smem_f;                       // [B, P, d]
  float* bs = qs + batch * P * dim;         // [B, PQ]
  float* ws = bs + batch * PQ;              // [PQ, PQ]
  for (int64_t i = threadIdx.x; i < batch * P * dim; i += blockDim.x) qs[i] = a.queries[i];
  for (int64_t i = threadIdx.x; i < batch * PQ; i += blockDim.x) bs[i] = a.gate_bias[i];
  for (int64_t i = threadIdx.x; i < PQ * PQ; i += blockDim.x) ws[i] = a.gate_weight[i];
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const S* items = static_cast<const S*>(a.items);
  for (int64_t w = a.word_begin + blockIdx.x * warps_per_block + (threadIdx.x >> 5);
       w < a.word_end; w += stride) {
    uint32_t any = 0u;
    if (a.mask) {
      for (int64_t b = 0; b < batch; ++b) any |= __ldg(a.mask + b * a.mask_words + w);
    } else {
      any = kFull;
    }
    const int64_t item = w * 32 + lane;
    const int64_t here = a.num_items - w * 32;
    if (here < 32) any &= (1u << here) - 1u;
    if (any == 0u) continue;  // the same for every lane of the warp
    const S* row = items + item * (Q * dim);
    for (int64_t b = 0; b < batch; ++b) {
      const uint32_t bits = a.mask ? __ldg(a.mask + b * a.mask_words + w) : kFull;
      bool want = false;
      uint64_t key = 0;
      if (item < a.num_items && ((bits >> lane) & 1u)) {
        const float* qb = qs + b * P * dim;
        float x[PQ];
#pragma unroll
        for (int q = 0; q < Q; ++q) {
          float s[P][mol::kLanes];
#pragma unroll
          for (int p = 0; p < P; ++p) {
#pragma unroll
            for (int t = 0; t < mol::kLanes; ++t) s[p][t] = 0.f;
          }
          const S* e = row + q * dim;
          for (int64_t j = 0; j < dim; j += mol::kLanes) {
            float v[mol::kLanes];
            Load8<L>::Get(e + j, v);
#pragma unroll
            for (int p = 0; p < P; ++p) {
              const float4 q0 = *reinterpret_cast<const float4*>(qb + p * dim + j);
              const float4 q1 = *reinterpret_cast<const float4*>(qb + p * dim + j + 4);
              s[p][0] = fmaf(q0.x, v[0], s[p][0]);
              s[p][1] = fmaf(q0.y, v[1], s[p][1]);
              s[p][2] = fmaf(q0.z, v[2], s[p][2]);
              s[p][3] = fmaf(q0.w, v[3], s[p][3]);
              s[p][4] = fmaf(q1.x, v[4], s[p][4]);
              s[p][5] = fmaf(q1.y, v[5], s[p][5]);
              s[p][6] = fmaf(q1.z, v[6], s[p][6]);
              s[p][7] = fmaf(q1.w, v[7], s[p][7]);
            }
          }
#pragma unroll
          for (int p = 0; p < P; ++p) x[p * Q + q] = mol::ReduceLanes(s[p]);
        }
        const float score = MixFixed<PQ>(x, bs + b * PQ, ws, a.softmax);
        key = select_gpu::FloatKey(score, item);
        want = key >= a.thr[b];
      }
      Append(a, b, want, key, lane);
    }
  }
}

template <typename L, int P>
cudaError_t LaunchItemScanP(const ScanArgs& a, int sms, cudaStream_t stream) {
  const size_t smem = ItemScanSharedBytes(a.batch, P, P, a.dim);
  cudaError_t err = cudaFuncSetAttribute(MoLItemScanKernel<L, P, P>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  int per_sm = 0;
  err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, MoLItemScanKernel<L, P, P>,
                                                      kItemScanThreads, smem);
  if (err != cudaSuccess) return err;
  const int64_t words = a.word_end - a.word_begin;
  const int64_t warps = kItemScanThreads / 32;
  const int64_t blocks = std::max<int64_t>(
      1, std::min<int64_t>((words + warps - 1) / warps,
                           static_cast<int64_t>(std::max(per_sm, 1)) * sms));
  MoLItemScanKernel<L, P, P><<<static_cast<unsigned>(blocks), kItemScanThreads, smem, stream>>>(a);
  return cudaGetLastError();
}

// The item-parallel scan for P = Q = a.p (ItemScanApplies holds).
template <typename L>
cudaError_t LaunchItemScan(const ScanArgs& a, int sms, cudaStream_t stream) {
  switch (a.p) {
    case 1: return LaunchItemScanP<L, 1>(a, sms, stream);
    case 2: return LaunchItemScanP<L, 2>(a, sms, stream);
    case 4: return LaunchItemScanP<L, 4>(a, sms, stream);
    default: return LaunchItemScanP<L, 8>(a, sms, stream);
  }
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
  const select_gpu::SelectOnlyLayout lay = select_gpu::MakeSelectOnlyLayout(batch, k_eff);
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
  const bool item_scan = ItemScanApplies(items, item_type, batch, p, q, dim);
  return select_gpu::RunSegmentedSelect<uint32_t, FloatKeyCodec>(
      st, batch, a.mask_words, k_eff, k, out, stream, [&](int64_t begin, int64_t end) {
        a.word_begin = begin;
        a.word_end = end;
        if (item_scan) {
          switch (item_type) {
            case 1: return LaunchItemScan<mol::LoadF16>(a, sms, stream);
            case 2: return LaunchItemScan<mol::LoadBF16>(a, sms, stream);
            default: return LaunchItemScan<mol::LoadF32>(a, sms, stream);
          }
        }
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
