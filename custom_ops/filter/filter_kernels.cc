// CPU kernel of LinrCompileFilter and LinrCompileFilterColumns.
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

// LinrCompileFilter, and LinrCompileFilterColumns when `with_columns`.
class LinrCompileFilterOp : public OpKernel {
 public:
  explicit LinrCompileFilterOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string unknown_value;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("unknown_value", &unknown_value));
    unknown_value_ = unknown_value == "match_none" ? filter::UnknownValuePolicy::kMatchNone
                                                   : filter::UnknownValuePolicy::kError;
    with_columns_ = ctx->num_outputs() == 4;
    if (with_columns_) OP_REQUIRES_OK(ctx, ctx->GetAttr("id_attribute", &id_attribute_));
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

    filter::BitKeyIndex index;
    std::string error;
    OP_REQUIRES(ctx, index.Build(Strings(bit_keys), &error),
                errors::InvalidArgument("LinrCompileFilter: ", error));
    filter::ColumnSchema columns;
    if (with_columns_) {
      for (int i : {2, 3}) {
        OP_REQUIRES(ctx, TensorShapeUtils::IsVector(ctx->input(i).shape()),
                    errors::InvalidArgument("LinrCompileFilterColumns: input ", i,
                                            " must be rank 1"));
      }
      OP_REQUIRES(ctx, columns.Build(Strings(ctx->input(2)), Strings(ctx->input(3)),
                                     id_attribute_, &error),
                  errors::InvalidArgument("LinrCompileFilterColumns: ", error));
      for (const std::string& name : columns.Names()) {
        OP_REQUIRES(ctx, index.Find(name) == nullptr,
                    errors::InvalidArgument("LinrCompileFilterColumns: attribute '", name,
                                            "' is both a bit attribute and a column"));
      }
    }

    const auto filters_flat = filters.flat<tstring>();
    const int64_t batch = filters_flat.size();
    std::vector<filter::Program> programs(batch);
    std::vector<filter::ColumnOperands> operands(batch);
    int64_t length = 1, records = 1, value_lookups = 0, id_lookups = 0;
    for (int64_t b = 0; b < batch; ++b) {
      filter::FilterNode root;
      const std::string text(filters_flat(b));
      const bool ok = filter::ParseFilter(text, &root, &error) &&
                      filter::CompileFilter(root, index, columns, unknown_value_, &programs[b],
                                            &operands[b], &error);
      OP_REQUIRES(ctx, ok, errors::InvalidArgument("filter[", b, "]: ", error));
      length = std::max<int64_t>(length, programs[b].size());
      records = std::max<int64_t>(records, operands[b].records.size());
      value_lookups = std::max<int64_t>(value_lookups, operands[b].value_lookups.size());
      id_lookups = std::max<int64_t>(id_lookups, operands[b].id_lookups.size());
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
        dst[1] = ins.operand;
        for (int64_t w = 0; w < num_words; ++w) {
          dst[kProgramHeaderWords + w] = static_cast<int32_t>(ins.mask[w]);
        }
      }
      const char* invalid = ValidateProgram(out.data() + b * length * row, length, num_words);
      OP_REQUIRES(ctx, invalid == nullptr,
                  errors::Internal("filter[", b, "]: compiled an invalid program: ", invalid));
    }
    if (!with_columns_) return;

    Tensor* records_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, records, 4}), &records_out));
    auto rec = records_out->flat<int64_t>();
    rec.setZero();
    Tensor* values_out = nullptr;
    Tensor* ids_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch, value_lookups}), &values_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({batch, id_lookups}), &ids_out));
    auto values = values_out->matrix<tstring>();
    auto ids = ids_out->matrix<tstring>();
    for (int64_t b = 0; b < batch; ++b) {
      const filter::ColumnOperands& ops = operands[b];
      for (size_t r = 0; r < ops.records.size(); ++r) {
        for (int j = 0; j < 4; ++j) rec(((b * records) + r) * 4 + j) = ops.records[r][j];
      }
      for (int64_t i = 0; i < value_lookups; ++i) {
        values(b, i) = i < static_cast<int64_t>(ops.value_lookups.size()) ? ops.value_lookups[i] : "";
      }
      for (int64_t i = 0; i < id_lookups; ++i) {
        ids(b, i) = i < static_cast<int64_t>(ops.id_lookups.size()) ? ops.id_lookups[i] : "";
      }
    }
  }

 private:
  static std::vector<std::string> Strings(const Tensor& t) {
    const auto flat = t.flat<tstring>();
    std::vector<std::string> out;
    out.reserve(flat.size());
    for (int64_t i = 0; i < flat.size(); ++i) out.emplace_back(flat(i));
    return out;
  }

  filter::UnknownValuePolicy unknown_value_;
  bool with_columns_ = false;
  std::string id_attribute_;
};

REGISTER_KERNEL_BUILDER(Name("LinrCompileFilter").Device(::tensorflow::DEVICE_CPU),
                        LinrCompileFilterOp);
REGISTER_KERNEL_BUILDER(Name("LinrCompileFilterColumns").Device(::tensorflow::DEVICE_CPU),
                        LinrCompileFilterOp);

}  // namespace linr
