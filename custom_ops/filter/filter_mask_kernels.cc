// CPU kernel of LinrFilterMask and LinrFilterMaskColumns.
//
// Items are processed in chunks of 2048 (64 output words) on TF's intra-op
// thread pool. Identical programs of the batch are evaluated once and their
// words copied. The fast path (AVX2, or AVX-512 where the CPU has it)
// evaluates each program bit-sliced, 64
// items at a time (filter_mask.h); the portable path ($LINR_CPU_ISA=portable
// or no AVX2) calls EvalProgram per item. Both give the same bits.
//
// The kernel, FilterMaskOp<Device>, checks the inputs, allocates the outputs
// and runs FilterMaskFunctor<Device>: the CPU functor here, the GPU one in
// filter_mask_kernels_gpu.cu.cc (GOOGLE_CUDA builds).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "custom_ops/common/cpu_isa.h"
#include "custom_ops/common/devices.h"
#include "custom_ops/filter/filter_mask.h"
#include "custom_ops/filter/filter_mask_kernels.h"
#include "custom_ops/filter/filter_mask_validate.h"
#include "custom_ops/filter/filter_program.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/threadpool.h"

namespace linr {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

namespace {

constexpr int64_t kChunkItems = 2048;
constexpr int64_t kChunkWords = kChunkItems / 32;

// Population count without relying on -mpopcnt (SWAR).
inline int64_t Popcount64(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
  return static_cast<int64_t>((x * 0x0101010101010101ull) >> 56);
}

// The bit-sliced path's level (common/cpu_isa.h): kAvx512 (512-bit leaves),
// kAvx2, or below (the portable per-item path; $LINR_CPU_ISA=portable or
// popcnt, or a CPU without AVX2).
int BitSlicedLevel() { return cpu_isa::Select(/*avx512_ok=*/true); }

bool UseBitSliced() { return BitSlicedLevel() >= cpu_isa::kAvx2; }

}  // namespace

template <>
struct FilterMaskFunctor<CPUDevice> {
  void operator()(OpKernelContext* ctx, const FilterMaskArgs& a) {
    const int64_t num_items = a.num_items, num_words = a.num_words;
    const int64_t batch = a.batch, length = a.length;
    const int64_t row = kProgramHeaderWords + num_words;
    const int32_t* programs = a.program->flat<int32_t>().data();
    const int64_t mask_words = (num_items + 31) / 32;
    int32_t* counts = a.count;
    std::fill(counts, counts + batch, 0);
    if (batch == 0 || num_items == 0) return;

    // Identical programs are evaluated once: rep[b] = first query with b's
    // program (not with column leaves: their operands differ per query).
    const size_t program_bytes = static_cast<size_t>(length * row) * sizeof(int32_t);
    std::vector<int64_t> unique;  // representative queries
    std::vector<int64_t> rep(batch);
    for (int64_t b = 0; b < batch; ++b) {
      rep[b] = b;
      for (int64_t u : unique) {
        if (a.has_columns) break;
        if (std::memcmp(programs + u * length * row, programs + b * length * row,
                        program_bytes) == 0) {
          rep[b] = u;
          break;
        }
      }
      if (rep[b] == b) unique.push_back(b);
    }
    std::vector<std::vector<filter_mask::Instruction>> stripped;
    std::vector<ColumnLeaf> leaves;  // per unique query (column programs)
    for (int64_t u : unique) {
      stripped.push_back(filter_mask::StripProgram(programs + u * length * row, length, num_words));
      if (a.has_columns) {
        leaves.push_back(ColumnLeaf{a.numbers, a.num_numbers, a.value_ids, a.value_width,
                                    a.resolved->records.data() + u * a.resolved->num_records * 4,
                                    a.resolved->pool.data()});
      }
    }

    // Column leaves shared by several queries (e.g. the same base filter with
    // per-user exclusion lists): shared_of[u * P + operand] = shared index.
    const int64_t num_records = a.has_columns ? a.resolved->num_records : 0;
    std::vector<int32_t> shared_of(unique.size() * std::max<int64_t>(num_records, 1), -1);
    int64_t num_shared = 0;
    if (a.has_columns) {
      std::map<std::vector<int64_t>, std::pair<int32_t, int32_t>> seen;  // key -> (first slot, id)
      for (size_t u = 0; u < unique.size(); ++u) {
        for (const auto& ins : stripped[u]) {
          if (!IsColumnLeaf(ins.opcode) || ins.opcode == kIdIn) continue;
          const int64_t* r = a.resolved->records.data() + (unique[u] * num_records + ins.row[1]) * 4;
          std::vector<int64_t> key{ins.opcode, r[0], r[1]};
          if (ins.opcode == kNumberRange) {
            key.push_back(r[2]);
            key.push_back(r[3]);
          } else if (r[2] < 0) {
            key.push_back(-1);
          } else {
            key.insert(key.end(), a.resolved->pool.begin() + r[2], a.resolved->pool.begin() + r[3]);
          }
          const int32_t slot = static_cast<int32_t>(u * num_records + ins.row[1]);
          auto it = seen.find(key);
          if (it == seen.end()) {
            seen.emplace(std::move(key), std::make_pair(slot, -1));
          } else {
            if (it->second.second < 0) {
              it->second.second = static_cast<int32_t>(num_shared++);
              shared_of[it->second.first] = it->second.second;
            }
            shared_of[slot] = it->second.second;
          }
        }
      }
    }
    const bool bit_sliced = UseBitSliced();
    const bool avx512 = BitSlicedLevel() >= cpu_isa::kAvx512;
    const int32_t* bits = a.item_bits;
    uint32_t* mask = reinterpret_cast<uint32_t*>(a.mask);
    const int64_t num_chunks = (num_items + kChunkItems - 1) / kChunkItems;
    const int64_t num_unique = static_cast<int64_t>(unique.size());
    std::vector<int64_t> chunk_counts(num_chunks * num_unique, 0);

    constexpr int64_t kChunkBlocks = kChunkItems / filter_mask::kBlock;
    auto run_chunk = [&](int64_t chunk, std::vector<int32_t>& columns,
                         std::vector<uint64_t>& shared_words, std::vector<uint8_t>& shared_valid) {
      const int64_t first = chunk * kChunkItems;
      if (num_shared > 0) {
        shared_words.resize(num_shared * kChunkBlocks);
        shared_valid.assign(num_shared * kChunkBlocks, 0);
      }
      const int64_t n = std::min(kChunkItems, num_items - first);
      const int64_t w_first = first / 32;
      const int64_t w_count = (n + 31) / 32;
      if (bit_sliced) {
        // Columns: word w of item j at columns[w * kChunkItems + j], zero-padded.
        const int32_t* cols;
        if (num_words == 1 && n == kChunkItems) {
          cols = bits + first;
        } else {
          columns.assign(num_words * kChunkItems, 0);
          for (int64_t j = 0; j < n; ++j) {
            for (int64_t w = 0; w < num_words; ++w) {
              columns[w * kChunkItems + j] = bits[(first + j) * num_words + w];
            }
          }
          cols = columns.data();
        }
        const int64_t stride = num_words == 1 && n == kChunkItems ? 0 : kChunkItems;
        for (int64_t u = 0; u < num_unique; ++u) {
          const auto& prog = stripped[u];
          uint32_t* out = mask + unique[u] * mask_words + w_first;
          int64_t count = 0;
          for (int64_t j = 0; j < n; j += filter_mask::kBlock) {
            const filter_mask::SharedLeaves shared{
                shared_of.data() + u * std::max<int64_t>(num_records, 1), shared_words.data(),
                shared_valid.data(), kChunkBlocks, j / filter_mask::kBlock};
            const filter_mask::ColumnBlock column_block{
                a.has_columns ? &leaves[u] : nullptr, num_items, first + j,
                num_shared > 0 ? &shared : nullptr};
#if LINR_FILTER_X86
            uint64_t v = avx512
                ? filter_mask::EvalBlock<filter_mask::Avx512Leaves>(
                      prog.data(), prog.size(), cols + j, stride, num_words, column_block)
                : filter_mask::EvalBlock<filter_mask::Avx2Leaves>(
                      prog.data(), prog.size(), cols + j, stride, num_words, column_block);
#else
            uint64_t v = filter_mask::EvalBlock<filter_mask::PortableLeaves>(
                prog.data(), prog.size(), cols + j, stride, num_words, column_block);
#endif
            const int64_t left = n - j;
            if (left < 64) v &= (uint64_t{1} << left) - 1;
            count += Popcount64(v);
            out[j / 32] = static_cast<uint32_t>(v);
            if (j / 32 + 1 < w_count) out[j / 32 + 1] = static_cast<uint32_t>(v >> 32);
          }
          chunk_counts[chunk * num_unique + u] = count;
        }
      } else {
        for (int64_t u = 0; u < num_unique; ++u) {
          const int32_t* prog = programs + unique[u] * length * row;
          uint32_t* out = mask + unique[u] * mask_words + w_first;
          std::fill(out, out + w_count, 0u);
          int64_t count = 0;
          const ColumnLeaf* leaf = a.has_columns ? &leaves[u] : nullptr;
          for (int64_t j = 0; j < n; ++j) {
            const int32_t* item = bits + (first + j) * num_words;
            const bool pass = leaf != nullptr
                                  ? EvalProgramWith(prog, length, num_words, item,
                                                    ColumnItem{*leaf, first + j})
                                  : EvalProgram(prog, length, num_words, item);
            if (pass) {
              out[j / 32] |= 1u << (j % 32);
              ++count;
            }
          }
          chunk_counts[chunk * num_unique + u] = count;
        }
      }
      for (int64_t b = 0; b < batch; ++b) {
        if (rep[b] == b) continue;
        std::memcpy(mask + b * mask_words + w_first, mask + rep[b] * mask_words + w_first,
                    w_count * sizeof(uint32_t));
      }
    };

    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int64_t cost = kChunkItems * std::max<int64_t>(1, length) * num_unique * 4 + batch * 64;
    pool->ParallelFor(num_chunks, cost, [&](int64_t begin, int64_t end) {
      std::vector<int32_t> columns;
      std::vector<uint64_t> shared_words;
      std::vector<uint8_t> shared_valid;
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        run_chunk(chunk, columns, shared_words, shared_valid);
      }
    });

    for (int64_t b = 0; b < batch; ++b) {
      int64_t total = 0;
      const int64_t u = std::find(unique.begin(), unique.end(), rep[b]) - unique.begin();
      for (int64_t chunk = 0; chunk < num_chunks; ++chunk) total += chunk_counts[chunk * num_unique + u];
      counts[b] = static_cast<int32_t>(total);
    }
  }
};

namespace {

// LinrFilterMask, and LinrFilterMaskColumns (7 inputs).
template <typename Device>
class FilterMaskOp : public OpKernel {
 public:
  explicit FilterMaskOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& item_bits = ctx->input(0);
    const Tensor& program = ctx->input(1);
    const bool with_columns = ctx->num_inputs() == 7;
    OP_REQUIRES_OK(ctx, ValidateFilterMaskInputs(item_bits, program, with_columns));
    ResolvedColumns resolved;
    if (with_columns) {
      OP_REQUIRES_OK(ctx, ResolveColumnOperands(program, ctx->input(2), ctx->input(3),
                                                ctx->input(4), ctx->input(5), ctx->input(6),
                                                item_bits.dim_size(0), &resolved));
    }
    const int64_t num_items = item_bits.dim_size(0);
    const int64_t batch = program.dim_size(0);
    Tensor* mask = nullptr;
    Tensor* count = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, (num_items + 31) / 32}),
                                             &mask));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch}), &count));
    FilterMaskArgs args{item_bits.flat<int32_t>().data(),
                              &program,
                              num_items,
                              /*num_words=*/item_bits.dim_size(1),
                              batch,
                              /*length=*/program.dim_size(1),
                              mask->flat<int32_t>().data(),
                              count->flat<int32_t>().data()};
    if (with_columns) {
      args.has_columns = true;
      args.numbers = ctx->input(5).flat<int64_t>().data();
      args.num_numbers = ctx->input(5).dim_size(1);
      args.value_ids = ctx->input(6).flat<int32_t>().data();
      args.value_width = ctx->input(6).dim_size(1);
      args.resolved = &resolved;
    }
    FilterMaskFunctor<Device>()(ctx, args);
  }
};

REGISTER_KERNEL_BUILDER(Name("LinrFilterMask").Device(::tensorflow::DEVICE_CPU),
                        FilterMaskOp<CPUDevice>);
REGISTER_KERNEL_BUILDER(Name("LinrFilterMaskColumns").Device(::tensorflow::DEVICE_CPU),
                        FilterMaskOp<CPUDevice>);

}  // namespace

#if GOOGLE_CUDA
// FilterMaskFunctor<GPUDevice> is defined in filter_mask_kernels_gpu.cu.cc.
REGISTER_KERNEL_BUILDER(Name("LinrFilterMask")
                            .Device(::tensorflow::DEVICE_GPU)
                            .HostMemory("program"),
                        FilterMaskOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(Name("LinrFilterMaskColumns")
                            .Device(::tensorflow::DEVICE_GPU)
                            .HostMemory("program")
                            .HostMemory("operands")
                            .HostMemory("value_refs")
                            .HostMemory("id_slots"),
                        FilterMaskOp<GPUDevice>);
#endif  // GOOGLE_CUDA

}  // namespace linr
