// Registration of LinrFilterMask: shape function and documentation.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace linr {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;
namespace errors = ::tensorflow::errors;

REGISTER_OP("LinrFilterMask")
    .Input("item_bits: int32")
    .Input("program: int32")
    .Output("mask: int32")
    .Output("count: int32")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle item_bits, program;
      if (!c->WithRank(c->input(0), 2, &item_bits).ok()) {
        return errors::InvalidArgument("LinrFilterMask: item_bits must have rank 2, got shape ",
                                       c->DebugString(c->input(0)));
      }
      if (!c->WithRank(c->input(1), 3, &program).ok()) {
        return errors::InvalidArgument("LinrFilterMask: program must have rank 3, got shape ",
                                       c->DebugString(c->input(1)));
      }
      DimensionHandle words = c->Dim(item_bits, 1);
      DimensionHandle row = c->Dim(program, 2);
      if (c->ValueKnown(words) && c->ValueKnown(row) && c->Value(row) != c->Value(words) + 2) {
        return errors::InvalidArgument(
            "LinrFilterMask: bitset words W mismatch: item_bits has W=", c->Value(words),
            " but program rows have 2 + W = ", c->Value(row));
      }
      DimensionHandle num_items = c->Dim(item_bits, 0);
      DimensionHandle mask_words = c->UnknownDim();
      if (c->ValueKnown(num_items)) mask_words = c->MakeDim((c->Value(num_items) + 31) / 32);
      c->set_output(0, c->Matrix(c->Dim(program, 0), mask_words));
      c->set_output(1, c->Vector(c->Dim(program, 0)));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Evaluates compiled filter programs against item attribute bitsets.

Bit i % 32 of mask[b, i / 32] is set when item i passes program b (see
custom_ops/filter/filter_program.h); bits past N are 0. Identical programs in
the batch are evaluated once.

item_bits: [N, W] attribute bitsets.
program: [B, L, 2 + W] programs, e.g. from LinrCompileFilter.
mask: [B, M] pass bits, M = ceil(N / 32).
count: [B] number of passing items per query.
)doc");

REGISTER_OP("LinrFilterMaskColumns")
    .Input("item_bits: int32")
    .Input("program: int32")
    .Input("operands: int64")
    .Input("value_refs: int32")
    .Input("id_slots: int64")
    .Input("numbers: int64")
    .Input("value_ids: int32")
    .Output("mask: int32")
    .Output("count: int32")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle item_bits, program;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &item_bits));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 3, &program));
      DimensionHandle num_items = c->Dim(item_bits, 0);
      DimensionHandle mask_words = c->UnknownDim();
      if (c->ValueKnown(num_items)) mask_words = c->MakeDim((c->Value(num_items) + 31) / 32);
      c->set_output(0, c->Matrix(c->Dim(program, 0), mask_words));
      c->set_output(1, c->Vector(c->Dim(program, 0)));
      return absl::OkStatus();
    })
    .Doc(R"doc(
LinrFilterMask over the bitsets and the column stores, in one pass: programs
of LinrCompileFilterColumns (custom_ops/filter/filter_columns.h).

operands: [B, P, 4] operand records of the column leaves.
value_refs: [B, Lv] value ids of the programs' value lookups (-1 = unknown:
  matches nothing).
id_slots: [B, Li] slots of the programs' id lookups (-1 = not in the index).
numbers: [N, A] exact numbers (int64, or float64 bit patterns).
value_ids: [N, V] value ids, each attribute's cell sorted, -1 padded.
)doc");

}  // namespace linr
