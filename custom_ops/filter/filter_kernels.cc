// CPU kernel of LinrCompileFilter.
#include <algorithm>
#include <string>
#include <vector>

#include "custom_ops/filter/filter_compiler.h"
#include "custom_ops/filter/filter_language.h"
#include "custom_ops/filter/filter_program.h"
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
    std::vector<filter::Program> programs(batch);
    int64_t length = 1;
    for (int64_t b = 0; b < batch; ++b) {
      filter::FilterNode root;
      const std::string text(filters_flat(b));
      const bool ok = filter::ParseFilter(text, &root, &error) &&
                      filter::CompileFilter(root, index, unknown_value_, &programs[b], &error);
      OP_REQUIRES(ctx, ok, errors::InvalidArgument("filter[", b, "]: ", error));
      length = std::max<int64_t>(length, programs[b].size());
    }

    const int64_t num_words = index.num_words();
    const int64_t row = kProgramHeaderWords + num_words;
    Tensor* program = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, length, row}), &program));
    auto out = program->flat<int32_t>();
    out.setZero();  // zero rows are kNop
    for (int64_t b = 0; b < batch; ++b) {
      for (size_t i = 0; i < programs[b].size(); ++i) {
        const filter::Instruction& ins = programs[b][i];
        int32_t* dst = out.data() + (b * length + static_cast<int64_t>(i)) * row;
        dst[0] = ins.opcode;
        for (int64_t w = 0; w < num_words; ++w) {
          dst[kProgramHeaderWords + w] = static_cast<int32_t>(ins.mask[w]);
        }
      }
      const char* invalid = ValidateProgram(out.data() + b * length * row, length, num_words);
      OP_REQUIRES(ctx, invalid == nullptr,
                  errors::Internal("filter[", b, "]: compiled an invalid program: ", invalid));
    }
  }

 private:
  filter::UnknownValuePolicy unknown_value_;
};

REGISTER_KERNEL_BUILDER(Name("LinrCompileFilter").Device(::tensorflow::DEVICE_CPU),
                        LinrCompileFilterOp);

}  // namespace linr
