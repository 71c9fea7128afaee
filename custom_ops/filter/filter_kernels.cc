// CPU kernel of LinrCompileFilter.
#include <string>
#include <vector>

#include "custom_ops/filter/filter_compiler.h"
#include "custom_ops/filter/filter_language.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace linr {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::tstring;
namespace errors = ::tensorflow::errors;

class LinrCompileFilterOp : public OpKernel {
 public:
  explicit LinrCompileFilterOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string unknown_value;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("unknown_value", &unknown_value));
    unknown_value_ = unknown_value == "match_none" ? filter::UnknownValuePolicy::kMatchNone
                                                   : filter::UnknownValuePolicy::kError;
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& filters = ctx->input(0);
    const Tensor& bit_keys = ctx->input(1);
    OP_REQUIRES(ctx, TensorShapeUtils::IsVector(filters.shape()),
                errors::InvalidArgument("LinrCompileFilter: filters must be rank 1 [B], got shape ",
                                        filters.shape().DebugString()));
    OP_REQUIRES(ctx, TensorShapeUtils::IsVector(bit_keys.shape()),
                errors::InvalidArgument(
                    "LinrCompileFilter: bit_keys must be rank 1 [NB], got shape ",
                    bit_keys.shape().DebugString()));

    const auto keys_flat = bit_keys.flat<tstring>();
    std::vector<std::string> keys;
    keys.reserve(keys_flat.size());
    for (int64_t i = 0; i < keys_flat.size(); ++i) keys.emplace_back(keys_flat(i));
    filter::BitKeyIndex index;
    std::string error;
    OP_REQUIRES(ctx, index.Build(keys, &error),
                errors::InvalidArgument("LinrCompileFilter: ", error));

    const auto filters_flat = filters.flat<tstring>();
    const int64_t batch = filters_flat.size();
    std::vector<std::vector<filter::ClauseBits>> compiled(batch);
    int64_t max_clauses = 0;
    for (int64_t b = 0; b < batch; ++b) {
      filter::FilterNode root;
      const std::string text(filters_flat(b));
      const bool ok = filter::ParseFilter(text, &root, &error) &&
                      filter::CompileFilter(root, index, unknown_value_, &compiled[b], &error);
      OP_REQUIRES(ctx, ok, errors::InvalidArgument("filter[", b, "]: ", error));
      max_clauses = std::max<int64_t>(max_clauses, compiled[b].size());
    }

    const int64_t num_words = index.num_words();
    Tensor* clauses = nullptr;
    Tensor* num_clauses = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, max_clauses, num_words}),
                                             &clauses));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch}), &num_clauses));
    auto clauses_flat = clauses->flat<int32_t>();
    clauses_flat.setZero();
    auto counts = num_clauses->flat<int32_t>();
    for (int64_t b = 0; b < batch; ++b) {
      counts(b) = static_cast<int32_t>(compiled[b].size());
      for (size_t c = 0; c < compiled[b].size(); ++c) {
        int32_t* row = clauses_flat.data() + (b * max_clauses + c) * num_words;
        for (int64_t w = 0; w < num_words; ++w) row[w] = static_cast<int32_t>(compiled[b][c][w]);
      }
    }
  }

 private:
  filter::UnknownValuePolicy unknown_value_;
};

REGISTER_KERNEL_BUILDER(Name("LinrCompileFilter").Device(::tensorflow::DEVICE_CPU),
                        LinrCompileFilterOp);

}  // namespace linr
