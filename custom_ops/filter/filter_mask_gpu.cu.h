// CUDA kernels of LinrFilterMask over raw device pointers (no TensorFlow).
//
// Two paths, both bit-identical to calling EvalProgram (filter_program.h) per
// item; the programs of the block's queries are staged in shared memory.
//
// Item path (B <= kItemPathMaxBatch, W <= 2): each lane owns one item in each
// of R consecutive output words (attribute words in registers, coalesced
// loads), evaluates the query's program per item with EvalProgram's 64-deep
// bit stack held in a register, and __ballot_sync turns the 32 verdicts of a
// word into the output word. The opcode dispatch is paid once per R items.
//
// Sliced path (any B, W): a warp handles R output words (32 R items) per
// iteration. The items' attribute words are transposed into bit planes with a
// 5-step shuffle transpose (plane p of word w = bit p of word w of the 32
// items), and each lane runs one query's program on whole 32-bit words: kAny
// ORs the planes named by the mask, kAll ANDs them, kAnd/kOr/kNot are bitwise.
// The top of the evaluation stack lives in registers, the rest in shared
// memory (lane-interleaved, conflict-free). Each lane serves up to 2 queries
// of the block's group of 64.
//
// Column path (programs with column leaves, filter_columns.h): each lane owns
// one item, evaluates every query's program with EvalProgramWith and the
// shared ColumnLeaf (the same code as the CPU's portable path), and
// __ballot_sync turns 32 verdicts into a word.
//
// Counts: popcounts per lane, reduced in shared memory, one global atomic per
// query per block. Programs must be validated on the host first.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_MASK_GPU_CU_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_MASK_GPU_CU_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "custom_ops/filter/filter_columns.h"
#include "custom_ops/filter/filter_program.h"

namespace linr {
namespace gpu {

constexpr int kMaskQueriesPerBlock = 64;  // sliced path: grid.y covers larger batches
constexpr int kItemPathMaxBatch = 2;
constexpr int kItemPathWords = 8;         // output words per warp iteration (item path)
constexpr int kMaskWarps = 8;
constexpr int kMaxProgSmemBytes = 48 * 1024;
constexpr int kSliceChunk = 32;           // sliced path: output words per warp chunk

// ---------------------------------------------------------------------------
// Item path.
template <int W>
__global__ void __launch_bounds__(kMaskWarps * 32)
    FilterMaskItemKernel(const int32_t* __restrict__ item_bits, int64_t num_items,
                         const int32_t* __restrict__ program, int64_t length, int batch,
                         int prog_in_smem, int32_t* __restrict__ mask,
                         int32_t* __restrict__ count) {
  constexpr int R = kItemPathWords;
  constexpr int row = kProgramHeaderWords + W;
  extern __shared__ int32_t prog_s[];
  __shared__ int32_t count_s[kItemPathMaxBatch];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t prog_words = static_cast<int64_t>(batch) * length * row;
  const int32_t* prog = program;
  if (prog_in_smem) {
    for (int64_t i = threadIdx.x; i < prog_words; i += blockDim.x) prog_s[i] = __ldg(program + i);
    prog = prog_s;
  }
  if (threadIdx.x < kItemPathMaxBatch) count_s[threadIdx.x] = 0;
  __syncthreads();
  const int64_t mask_words = (num_items + 31) / 32;
  int32_t cnt[kItemPathMaxBatch] = {0, 0};
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kMaskWarps * R;
  for (int64_t w0 = (static_cast<int64_t>(blockIdx.x) * kMaskWarps + warp) * R; w0 < mask_words;
       w0 += stride) {
    uint32_t x[R][W];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t item = (w0 + r) * 32 + lane;
      if (item < num_items) {
        if (W == 2) {
          const int2 v = __ldg(reinterpret_cast<const int2*>(item_bits) + item);
          x[r][0] = static_cast<uint32_t>(v.x);
          x[r][W - 1] = static_cast<uint32_t>(v.y);
        } else {
          x[r][0] = static_cast<uint32_t>(__ldg(item_bits + item));
        }
      } else {
#pragma unroll
        for (int w = 0; w < W; ++w) x[r][w] = 0u;
      }
    }
#pragma unroll
    for (int q = 0; q < kItemPathMaxBatch; ++q) {
      if (q >= batch) break;
      const int32_t* p = prog + static_cast<int64_t>(q) * length * row;
      uint64_t st[R];
#pragma unroll
      for (int r = 0; r < R; ++r) st[r] = 0;
      for (int64_t i = 0; i < length; ++i) {
        const int32_t* ins = p + i * row;
        const int32_t op = ins[0];
        if (op == kAny || op == kAll) {
          uint32_t m[W];
#pragma unroll
          for (int w = 0; w < W; ++w) m[w] = static_cast<uint32_t>(ins[kProgramHeaderWords + w]);
          if (op == kAny) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
              uint32_t hit = 0;
#pragma unroll
              for (int w = 0; w < W; ++w) hit |= x[r][w] & m[w];
              st[r] = (st[r] << 1) | static_cast<uint64_t>(hit != 0u);
            }
          } else {
#pragma unroll
            for (int r = 0; r < R; ++r) {
              uint32_t miss = 0;
#pragma unroll
              for (int w = 0; w < W; ++w) miss |= m[w] & ~x[r][w];
              st[r] = (st[r] << 1) | static_cast<uint64_t>(miss == 0u);
            }
          }
        } else if (op == kAnd) {
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const uint64_t b = st[r] & 1u;
            st[r] = (st[r] >> 1) & ~(b ^ 1u);
          }
        } else if (op == kOr) {
#pragma unroll
          for (int r = 0; r < R; ++r) st[r] = (st[r] >> 1) | (st[r] & 1u);
        } else if (op == kNot) {
#pragma unroll
          for (int r = 0; r < R; ++r) st[r] ^= 1u;
        } else if (op == kTrue) {
#pragma unroll
          for (int r = 0; r < R; ++r) st[r] = (st[r] << 1) | 1u;
        } else if (op == kFalse) {
#pragma unroll
          for (int r = 0; r < R; ++r) st[r] <<= 1;
        }
      }
      uint32_t mine = 0;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const bool valid = (w0 + r) * 32 + lane < num_items;
        const uint32_t word = __ballot_sync(0xffffffffu, valid && (st[r] & 1u));
        if (lane == r) mine = word;
      }
      if (lane < R && w0 + lane < mask_words) {
        mask[static_cast<int64_t>(q) * mask_words + w0 + lane] = static_cast<int32_t>(mine);
        cnt[q] += __popc(mine);
      }
    }
  }
#pragma unroll
  for (int q = 0; q < kItemPathMaxBatch; ++q) {
    int32_t c = cnt[q];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    if (lane == 0 && q < batch && c != 0) atomicAdd(&count_s[q], c);
  }
  __syncthreads();
  if (threadIdx.x < batch && count_s[threadIdx.x] != 0)
    atomicAdd(&count[threadIdx.x], count_s[threadIdx.x]);
}

// ---------------------------------------------------------------------------
// Sliced path.

// 32x32 bit transpose across the warp: in, lane i holds row i; out, lane j
// holds column j (bit i = bit j of lane i's input).
__device__ __forceinline__ uint32_t WarpTranspose32(uint32_t x, int lane) {
#pragma unroll
  for (int s = 16; s >= 1; s >>= 1) {
    const uint32_t m = s == 16 ? 0x0000ffffu
                       : s == 8 ? 0x00ff00ffu
                       : s == 4 ? 0x0f0f0f0fu
                       : s == 2 ? 0x33333333u
                                : 0x55555555u;
    const uint32_t y = __shfl_xor_sync(0xffffffffu, x, s);
    x = (lane & s) ? ((x & ~m) | ((y >> s) & m)) : ((x & m) | ((y << s) & ~m));
  }
  return x;
}

// smem per warp (uint32 words): planes [R][W][32], stack [depth][R][32].
template <int R>
__global__ void __launch_bounds__(kMaskWarps * 32)
    FilterMaskSlicedKernel(const int32_t* __restrict__ item_bits, int64_t num_items,
                           int64_t num_words, const int32_t* __restrict__ program,
                           int64_t length, int64_t batch, int depth, int prog_in_smem,
                           int32_t* __restrict__ mask, int32_t* __restrict__ count) {
  extern __shared__ uint32_t smem_u[];
  __shared__ int32_t count_s[kMaskQueriesPerBlock];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  const int64_t row = kProgramHeaderWords + num_words;
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kMaskQueriesPerBlock;
  const int nq = static_cast<int>(min(static_cast<int64_t>(kMaskQueriesPerBlock), batch - q0));
  const int64_t prog_stride = length * row;
  const int64_t prog_words = static_cast<int64_t>(nq) * prog_stride;
  const int32_t* prog = program + q0 * prog_stride;
  uint32_t* base = smem_u;
  if (prog_in_smem) {
    int32_t* ps = reinterpret_cast<int32_t*>(smem_u);
    for (int64_t i = threadIdx.x; i < prog_words; i += blockDim.x) ps[i] = __ldg(prog + i);
    prog = ps;
    base += (prog_words + 3) & ~int64_t{3};
  }
  const int64_t per_warp = (static_cast<int64_t>(R) * num_words + static_cast<int64_t>(depth) * R) * 32 +
                           static_cast<int64_t>(nq) * (kSliceChunk + 1);
  uint32_t* planes = base + warp * per_warp;
  uint32_t* stk = planes + R * num_words * 32;
  uint32_t* out_s = stk + depth * R * 32;  // [nq][kSliceChunk + 1]: staged output words
  for (int i = threadIdx.x; i < kMaskQueriesPerBlock; i += blockDim.x) count_s[i] = 0;
  __syncthreads();
  const int64_t mask_words = (num_items + 31) / 32;
  int32_t cnt[2] = {0, 0};
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps * kSliceChunk;
  for (int64_t c0 = (static_cast<int64_t>(blockIdx.x) * warps + warp) * kSliceChunk; c0 < mask_words;
       c0 += stride) {
  for (int sub = 0; sub < kSliceChunk; sub += R) {
    const int64_t w0 = c0 + sub;
    if (w0 >= mask_words) break;
    uint32_t valid_bits[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t item = (w0 + r) * 32 + lane;
      const bool valid = item < num_items;
      valid_bits[r] = __ballot_sync(0xffffffffu, valid);
      for (int64_t aw = 0; aw < num_words; ++aw) {
        const uint32_t x = valid ? static_cast<uint32_t>(__ldg(item_bits + item * num_words + aw)) : 0u;
        planes[(r * num_words + aw) * 32 + lane] = WarpTranspose32(x, lane);
      }
    }
    __syncwarp();
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int ql = lane + 32 * j;
      if (j == 1 && nq <= 32) break;
      if (ql < nq) {
        const int32_t* p = prog + ql * prog_stride;
        uint32_t top[R];
#pragma unroll
        for (int r = 0; r < R; ++r) top[r] = 0u;
        int sp = -1;  // entries below the top: stk[0..sp)
        for (int64_t i = 0; i < length; ++i) {
          const int32_t* ins = p + i * row;
          const int32_t op = ins[0];
          if (op == kNop) continue;
          if (op == kAnd || op == kOr) {
            --sp;
#pragma unroll
            for (int r = 0; r < R; ++r) {
              const uint32_t a = stk[(sp * R + r) * 32 + lane];
              top[r] = (op == kAnd) ? (a & top[r]) : (a | top[r]);
            }
          } else if (op == kNot) {
#pragma unroll
            for (int r = 0; r < R; ++r) top[r] = ~top[r];
          } else {
            if (sp >= 0) {
#pragma unroll
              for (int r = 0; r < R; ++r) stk[(sp * R + r) * 32 + lane] = top[r];
            }
            ++sp;
            if (op == kTrue || op == kFalse) {
#pragma unroll
              for (int r = 0; r < R; ++r) top[r] = (op == kTrue) ? 0xffffffffu : 0u;
            } else {
              const bool any = op == kAny;
              uint32_t acc[R];
#pragma unroll
              for (int r = 0; r < R; ++r) acc[r] = any ? 0u : 0xffffffffu;
              for (int64_t w = 0; w < num_words; ++w) {
                uint32_t m = static_cast<uint32_t>(ins[kProgramHeaderWords + w]);
                while (m != 0u) {
                  const int pbit = __ffs(m) - 1;
                  m &= m - 1u;
#pragma unroll
                  for (int r = 0; r < R; ++r) {
                    const uint32_t plane = planes[(r * num_words + w) * 32 + pbit];
                    acc[r] = any ? (acc[r] | plane) : (acc[r] & plane);
                  }
                }
              }
#pragma unroll
              for (int r = 0; r < R; ++r) top[r] = acc[r];
            }
          }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint32_t word = top[r] & valid_bits[r];
          out_s[ql * (kSliceChunk + 1) + sub + r] = word;
          cnt[j] += __popc(word);
        }
      }
    }
    __syncwarp();
  }
    // Coalesced write-out: one 128-byte row segment per query.
    const int64_t w = c0 + lane;
    for (int q = 0; q < nq; ++q) {
      if (w < mask_words) mask[(q0 + q) * mask_words + w] = static_cast<int32_t>(out_s[q * (kSliceChunk + 1) + lane]);
    }
    __syncwarp();
  }
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    if (cnt[j] != 0) atomicAdd(&count_s[lane + 32 * j], cnt[j]);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nq; i += blockDim.x) {
    if (count_s[i] != 0) atomicAdd(&count[q0 + i], count_s[i]);
  }
}

// ---------------------------------------------------------------------------
// Column path.
__global__ void __launch_bounds__(kMaskWarps * 32)
    FilterMaskColumnsKernel(const int32_t* __restrict__ item_bits, int64_t num_items,
                            int64_t num_words, const int32_t* __restrict__ program,
                            int64_t length, int64_t batch, const int64_t* __restrict__ numbers,
                            int64_t num_numbers, const int32_t* __restrict__ value_ids,
                            int64_t value_width, const int64_t* __restrict__ records,
                            int64_t num_records, const int32_t* __restrict__ pool,
                            int32_t* __restrict__ mask, int32_t* __restrict__ count) {
  const int lane = threadIdx.x & 31;
  const int64_t mask_words = (num_items + 31) / 32;
  const int64_t row = kProgramHeaderWords + num_words;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  const int64_t q = blockIdx.y;
  const ColumnLeaf leaf{numbers, num_numbers, value_ids, value_width,
                        records + q * num_records * kOperandWords, pool};
  const int32_t* prog = program + q * length * row;
  int32_t cnt = 0;
  for (int64_t w = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
       w < mask_words; w += warps) {
    const int64_t item = w * 32 + lane;
    bool pass = false;
    if (item < num_items) {
      pass = EvalProgramWith(prog, length, num_words, item_bits + item * num_words,
                             ColumnItem{leaf, item});
    }
    const uint32_t word = __ballot_sync(0xffffffffu, pass);
    if (lane == 0) {
      mask[q * mask_words + w] = static_cast<int32_t>(word);
      cnt += __popc(word);
    }
  }
  if (lane == 0 && cnt != 0) atomicAdd(&count[q], cnt);
}

// Programs with column leaves: mask [B, ceil(N/32)] and count [B] (device
// memory; count zeroed here). Programs, resolved records [B, P, 4] and the
// pool are device copies of the host-resolved operands.
inline cudaError_t LaunchFilterMaskColumns(const int32_t* item_bits, int64_t num_items,
                                           int64_t num_words, const int32_t* program,
                                           int64_t length, int64_t batch,
                                           const int64_t* numbers, int64_t num_numbers,
                                           const int32_t* value_ids, int64_t value_width,
                                           const int64_t* records, int64_t num_records,
                                           const int32_t* pool, int32_t* mask, int32_t* count,
                                           cudaStream_t stream) {
  if (batch <= 0) return cudaSuccess;
  cudaError_t err = cudaMemsetAsync(count, 0, sizeof(int32_t) * batch, stream);
  if (err != cudaSuccess) return err;
  const int64_t mask_words = (num_items + 31) / 32;
  if (mask_words == 0) return cudaSuccess;
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t want = (mask_words + kMaskWarps - 1) / kMaskWarps;
  const int64_t blocks = std::max<int64_t>(
      1, std::min<int64_t>(want, static_cast<int64_t>(sms) * 8 / std::max<int64_t>(1, std::min<int64_t>(batch, 8))));
  for (int64_t q0 = 0; q0 < batch; q0 += 65535) {
    const int64_t nq = std::min<int64_t>(65535, batch - q0);
    const int64_t row = kProgramHeaderWords + num_words;
    dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(nq));
    FilterMaskColumnsKernel<<<grid, kMaskWarps * 32, 0, stream>>>(
        item_bits, num_items, num_words, program + q0 * length * row, length, nq, numbers,
        num_numbers, value_ids, value_width, records + q0 * num_records * kOperandWords,
        num_records, pool, mask + q0 * mask_words, count + q0);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

// Computes mask [B, ceil(N/32)] and count [B] (both device memory; count is
// zeroed here). Programs: device int32 [B, L, 2 + W], already validated.
inline cudaError_t LaunchFilterMask(const int32_t* item_bits, int64_t num_items,
                                    int64_t num_words, const int32_t* program, int64_t length,
                                    int64_t batch, int32_t* mask, int32_t* count,
                                    cudaStream_t stream) {
  if (batch <= 0) return cudaSuccess;
  cudaError_t err = cudaMemsetAsync(count, 0, sizeof(int32_t) * batch, stream);
  if (err != cudaSuccess) return err;
  const int64_t mask_words = (num_items + 31) / 32;
  if (mask_words == 0) return cudaSuccess;
  if (num_words <= 0 || length <= 0) return cudaErrorInvalidValue;
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t row = kProgramHeaderWords + num_words;

  if (batch <= kItemPathMaxBatch && num_words <= 2) {
    const int64_t prog_bytes = batch * length * row * 4;
    const int in_smem = prog_bytes <= kMaxProgSmemBytes ? 1 : 0;
    const size_t smem = in_smem ? static_cast<size_t>(prog_bytes) : 0;
    const int64_t per_block = static_cast<int64_t>(kMaskWarps) * kItemPathWords;
    const int64_t want = (mask_words + per_block - 1) / per_block;
    const int64_t blocks = std::min<int64_t>(want, static_cast<int64_t>(sms) * 8);
    if (num_words == 1) {
      FilterMaskItemKernel<1><<<static_cast<unsigned>(blocks), kMaskWarps * 32, smem, stream>>>(
          item_bits, num_items, program, length, static_cast<int>(batch), in_smem, mask, count);
    } else {
      FilterMaskItemKernel<2><<<static_cast<unsigned>(blocks), kMaskWarps * 32, smem, stream>>>(
          item_bits, num_items, program, length, static_cast<int>(batch), in_smem, mask, count);
    }
    return cudaGetLastError();
  }

  const int64_t group = std::min<int64_t>(batch, kMaskQueriesPerBlock);
  const int64_t prog_bytes = group * length * row * 4;
  const int in_smem = prog_bytes <= kMaxProgSmemBytes ? 1 : 0;
  const int64_t prog_smem = in_smem ? ((prog_bytes + 15) & ~int64_t{15}) : 0;
  const int depth = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(length, kMaxProgramStack)));
  const int64_t budget = 160 * 1024;
  const int64_t out_bytes = group * (kSliceChunk + 1) * 4;
  int r = 4;
  int64_t per_warp = (4 * num_words + static_cast<int64_t>(depth) * 4) * 32 * 4 + out_bytes;
  if (prog_smem + per_warp > budget) {
    r = 1;
    per_warp = (num_words + static_cast<int64_t>(depth)) * 32 * 4 + out_bytes;
  }
  const int warps = static_cast<int>(std::min<int64_t>(kMaskWarps, (budget - prog_smem) / per_warp));
  if (warps < 1) return cudaErrorInvalidValue;  // W too large for shared memory
  const size_t smem = static_cast<size_t>(prog_smem + warps * per_warp);
  const int64_t per_block = static_cast<int64_t>(warps) * kSliceChunk;
  const int64_t want = (mask_words + per_block - 1) / per_block;
  const int64_t groups = (batch + kMaskQueriesPerBlock - 1) / kMaskQueriesPerBlock;
  int occ = 1;
  if (r == 4) {
    cudaFuncSetAttribute(FilterMaskSlicedKernel<4>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, FilterMaskSlicedKernel<4>, warps * 32, smem);
  } else {
    cudaFuncSetAttribute(FilterMaskSlicedKernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, FilterMaskSlicedKernel<1>, warps * 32, smem);
  }
  const int64_t blocks = std::min<int64_t>(want, static_cast<int64_t>(sms) * std::max(occ, 1));
  dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(groups));
  if (r == 4) {
    FilterMaskSlicedKernel<4><<<grid, warps * 32, smem, stream>>>(
        item_bits, num_items, num_words, program, length, batch, depth, in_smem, mask, count);
  } else {
    FilterMaskSlicedKernel<1><<<grid, warps * 32, smem, stream>>>(
        item_bits, num_items, num_words, program, length, batch, depth, in_smem, mask, count);
  }
  return cudaGetLastError();
}

}  // namespace gpu
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_MASK_GPU_CU_H_
