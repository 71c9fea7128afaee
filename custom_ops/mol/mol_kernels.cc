// CPU kernel of LinrMoLTopK and the registrations of both devices.
//
// Items are split into shards of whole mask words, one task per shard on TF's
// intra-op thread pool; a task scans its words (mol_cpu_scan.h) into one
// running top-k per query, and per-shard results are merged per query with
// the full (score desc, index asc) order (select/merge.h).
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "custom_ops/common/devices.h"
#include "custom_ops/mol/mol_common.h"
#include "custom_ops/mol/mol_cpu_scan.h"
#include "custom_ops/mol/mol_kernels.h"
#include "custom_ops/select/allocate_outputs.h"
#include "custom_ops/select/candidate_buffer.h"
#include "custom_ops/select/merge.h"
#include "custom_ops/select/ordering.h"
#include "custom_ops/select/outputs.h"
#include "tensorflow/core/framework/bfloat16.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/threadpool.h"

namespace linr {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

template <>
struct MoLTopKFunctor<CPUDevice> {
  void operator()(OpKernelContext* ctx, const MoLTopKArgs& a, const TopKOutputs& out) {
    if (a.batch == 0) return;
    const int64_t batch = a.batch, k = a.k, num_words = a.num_words;
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int64_t threads = std::max(1, pool->NumThreads());
    const int64_t shards = std::max<int64_t>(1, std::min<int64_t>(4 * threads, num_words / 8));
    const int64_t words_per_shard = (num_words + shards - 1) / shards;
    std::vector<std::vector<ScoredItem>> partial(shards * batch);
    auto run_shard = [&](int64_t shard) {
      const int64_t w_begin = std::min(num_words, shard * words_per_shard);
      const int64_t w_end = std::min(num_words, w_begin + words_per_shard);
      if (w_begin >= w_end) return;
      std::vector<CandidateBuffer<float>> buffers(batch);
      for (auto& b : buffers) b.Reset(k, (w_end - w_begin) * 32);
      switch (a.item_type) {
        case MoLItemType::kFloat32: mol::ScanWords<mol::LoadF32>(a, w_begin, w_end, buffers.data()); break;
        case MoLItemType::kFloat16: mol::ScanWords<mol::LoadF16>(a, w_begin, w_end, buffers.data()); break;
        case MoLItemType::kBFloat16: mol::ScanWords<mol::LoadBF16>(a, w_begin, w_end, buffers.data()); break;
      }
      for (int64_t q = 0; q < batch; ++q) partial[shard * batch + q] = std::move(buffers[q].Finish());
    };
    const int64_t cost = std::max<int64_t>(1, words_per_shard * 32 * batch * a.p * a.q * a.dim * 2);
    pool->ParallelFor(shards, cost, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) run_shard(s);
    });
    MergeShards(pool, partial, shards, batch, k, out);
  }
};

namespace {

template <typename T>
struct ItemTypeOf;
template <>
struct ItemTypeOf<float> {
  static constexpr MoLItemType value = MoLItemType::kFloat32;
};
template <>
struct ItemTypeOf<Eigen::half> {
  static constexpr MoLItemType value = MoLItemType::kFloat16;
};
template <>
struct ItemTypeOf<::tensorflow::bfloat16> {
  static constexpr MoLItemType value = MoLItemType::kBFloat16;
};

// The input checks of both devices (same messages).
absl::Status ValidateMoLInputs(const Tensor& queries, const Tensor& items, const Tensor& bias,
                               const Tensor& weight, const Tensor& mask, const Tensor& k_tensor,
                               int64_t* k) {
  namespace errors = ::tensorflow::errors;
  const char* op = kMoLTopKOp;
  auto rank_error = [op](const char* name, int rank, const Tensor& t) {
    return errors::InvalidArgument(op, ": ", name, " must have rank ", rank, ", got shape ",
                                   t.shape().DebugString());
  };
  if (queries.dims() != 3) return rank_error("queries [B, P, d]", 3, queries);
  if (items.dims() != 3) return rank_error("items [N, Q, d]", 3, items);
  if (bias.dims() != 2) return rank_error("gate_bias [B, P*Q]", 2, bias);
  if (weight.dims() != 2) return rank_error("gate_weight [P*Q, P*Q]", 2, weight);
  if (mask.dims() != 2) return rank_error("mask", 2, mask);
  if (!tensorflow::TensorShapeUtils::IsScalar(k_tensor.shape())) return rank_error("k", 0, k_tensor);
  const int64_t batch = queries.dim_size(0), p = queries.dim_size(1), d = queries.dim_size(2);
  const int64_t n = items.dim_size(0), q = items.dim_size(1);
  *k = k_tensor.scalar<int32_t>()();
  if (*k <= 0) return errors::InvalidArgument(op, ": k must be positive, got ", *k);
  if (p < 1 || p > mol::kMaxComponents || q < 1 || q > mol::kMaxComponents) {
    return errors::InvalidArgument(op, ": P and Q must be in [1, ", mol::kMaxComponents,
                                   "], got P=", p, " query embeddings and Q=", q,
                                   " item embeddings");
  }
  if (items.dim_size(2) != d) {
    return errors::InvalidArgument(op, ": embedding dimension d mismatch: queries have d=", d,
                                   ", items have d=", items.dim_size(2));
  }
  if (bias.dim_size(0) != batch || bias.dim_size(1) != p * q) {
    return errors::InvalidArgument(op, ": gate_bias must be [B, P*Q] = [", batch, ", ", p * q,
                                   "], got ", bias.shape().DebugString());
  }
  if (weight.dim_size(0) != p * q || weight.dim_size(1) != p * q) {
    return errors::InvalidArgument(op, ": gate_weight must be [P*Q, P*Q] = [", p * q, ", ",
                                   p * q, "], got ", weight.shape().DebugString());
  }
  if (mask.dim_size(0) != batch) {
    return errors::InvalidArgument(op, ": batch size B mismatch: queries ", batch, ", mask ",
                                   mask.dim_size(0));
  }
  if (mask.dim_size(1) != (n + 31) / 32) {
    return errors::InvalidArgument(op, ": mask words M mismatch: N=", n,
                                   " items need M=ceil(N/32)=", (n + 31) / 32,
                                   " words but mask has M=", mask.dim_size(1));
  }
  if (n > std::numeric_limits<int32_t>::max()) {
    return errors::InvalidArgument(op, ": too many items for int32 indices: ", n);
  }
  return absl::OkStatus();
}

template <typename Device, typename T>
class MoLTopKOp : public OpKernel {
 public:
  explicit MoLTopKOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("softmax", &softmax_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& queries = ctx->input(0);
    const Tensor& items = ctx->input(1);
    const Tensor& bias = ctx->input(2);
    const Tensor& weight = ctx->input(3);
    const Tensor& mask = ctx->input(4);
    int64_t k = 0;
    OP_REQUIRES_OK(ctx, ValidateMoLInputs(queries, items, bias, weight, mask, ctx->input(5), &k));
    MoLTopKArgs args;
    args.queries = queries.flat<float>().data();
    args.items = static_cast<const void*>(items.flat<T>().data());
    args.gate_bias = bias.flat<float>().data();
    args.gate_weight = weight.flat<float>().data();
    args.mask = mask.flat<int32_t>().data();
    args.item_type = ItemTypeOf<T>::value;
    args.batch = queries.dim_size(0);
    args.p = queries.dim_size(1);
    args.dim = queries.dim_size(2);
    args.num_items = items.dim_size(0);
    args.q = items.dim_size(1);
    args.num_words = mask.dim_size(1);
    args.k = k;
    args.softmax = softmax_;
    TopKOutputs out;
    OP_REQUIRES_OK(ctx, AllocateTopKOutputs(ctx, args.batch, k, &out));
    MoLTopKFunctor<Device>()(ctx, args, out);
  }

 private:
  bool softmax_ = true;
};

#define LINR_REGISTER_MOL(DEVICE, DEVICE_NAME, T, ...)                                     \
  REGISTER_KERNEL_BUILDER(                                                               \
      Name("LinrMoLTopK").Device(DEVICE_NAME) __VA_ARGS__.TypeConstraint<T>("T"),        \
      MoLTopKOp<DEVICE, T>)

LINR_REGISTER_MOL(CPUDevice, ::tensorflow::DEVICE_CPU, float);
LINR_REGISTER_MOL(CPUDevice, ::tensorflow::DEVICE_CPU, Eigen::half);
LINR_REGISTER_MOL(CPUDevice, ::tensorflow::DEVICE_CPU, ::tensorflow::bfloat16);

#if GOOGLE_CUDA
// MoLTopKFunctor<GPUDevice> is defined in mol_kernels_gpu.cu.cc.
LINR_REGISTER_MOL(GPUDevice, ::tensorflow::DEVICE_GPU, float, .HostMemory("k"));
LINR_REGISTER_MOL(GPUDevice, ::tensorflow::DEVICE_GPU, Eigen::half, .HostMemory("k"));
LINR_REGISTER_MOL(GPUDevice, ::tensorflow::DEVICE_GPU, ::tensorflow::bfloat16, .HostMemory("k"));
#endif  // GOOGLE_CUDA

#undef LINR_REGISTER_MOL

}  // namespace

}  // namespace linr
