// Registration of LinrCompileFilter: shape function and documentation.
#include "custom_ops/filter/filter_program.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace linr {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("LinrCompileFilter")
    .Input("filters: string")
    .Input("bit_keys: string")
    .Output("program: int32")
    .Attr("unknown_value: {'error', 'match_none'} = 'error'")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle filters, bit_keys;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &filters));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &bit_keys));
      DimensionHandle batch = c->Dim(filters, 0);
      DimensionHandle num_bits = c->Dim(bit_keys, 0);
      DimensionHandle row = c->UnknownDim();
      if (c->ValueKnown(num_bits)) {
        const int64_t nb = c->Value(num_bits);
        row = c->MakeDim(kProgramHeaderWords + (nb == 0 ? 1 : (nb + 31) / 32));
      }
      c->set_output(0, c->MakeShape({batch, c->UnknownDim(), row}));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Compiles attribute filter expressions into postfix filter programs.

Language (keywords AND OR NOT IN ALL in any case; precedence NOT > AND > OR):
`attr = v`, `attr != v`, `attr IN (v, ...)`, `attr NOT IN (v, ...)`,
`attr ALL (v, ...)` (holds every value), `attr < x`, `attr >= x` (numeric
attributes, x a bucket boundary), `NOT e`, `e AND e`, `e OR e`, `( e )`.
Values are quoted strings or bare tokens [A-Za-z0-9_.-]+. An empty filter
passes everything (a single kTrue).

The program format and its evaluator are in custom_ops/filter/filter_program.h:
row = {opcode, 0, mask[W]}, executed in order on a boolean stack.

filters: [B] filter expressions.
bit_keys: [NB] names of the attribute bits: "attr=value" (categorical),
  "attr@[lo,hi)" (numeric bucket, empty lo/hi = open end); keys starting with
  "__" are reserved.
program: [B, L, 2 + W], W = max(1, ceil(NB / 32)), L = the longest program in
  the batch (>= 1); shorter programs are padded with kNop rows.
unknown_value: 'error' rejects values missing from bit_keys; 'match_none' makes
  such a value match no item (`attr = v` is false, it adds nothing to an IN
  list, an ALL list holding it is false).
)doc");

REGISTER_OP("LinrCompileFilterColumns")
    .Input("filters: string")
    .Input("bit_keys: string")
    .Input("number_columns: string")
    .Input("value_columns: string")
    .Output("program: int32")
    .Output("operands: int64")
    .Output("value_lookups: string")
    .Output("id_lookups: string")
    .Attr("unknown_value: {'error', 'match_none'} = 'error'")
    .Attr("id_attribute: string = 'item_id'")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle filters, bit_keys, unused;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &filters));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &bit_keys));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &unused));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 1, &unused));
      DimensionHandle batch = c->Dim(filters, 0);
      DimensionHandle num_bits = c->Dim(bit_keys, 0);
      DimensionHandle row = c->UnknownDim();
      if (c->ValueKnown(num_bits)) {
        const int64_t nb = c->Value(num_bits);
        row = c->MakeDim(kProgramHeaderWords + (nb == 0 ? 1 : (nb + 31) / 32));
      }
      c->set_output(0, c->MakeShape({batch, c->UnknownDim(), row}));
      c->set_output(1, c->MakeShape({batch, c->UnknownDim(), c->MakeDim(4)}));
      c->set_output(2, c->Matrix(batch, c->UnknownDim()));
      c->set_output(3, c->Matrix(batch, c->UnknownDim()));
      return absl::OkStatus();
    })
    .Doc(R"doc(
LinrCompileFilter with column attributes (custom_ops/filter/filter_columns.h).

Besides the bit attributes of `bit_keys`: exact numeric columns (`<`, `<=`,
`>`, `>=`, `=`, `!=`, `BETWEEN a AND b` at any threshold), value-id
attributes (`=`, `!=`, `IN`, `NOT IN`, `ALL`; values are returned in
`value_lookups` for the caller to map to ids, an unknown one matching
nothing) and per-request id sets on `id_attribute` (`IN`, `NOT IN`, `=`,
`!=`; ids returned in `id_lookups` for the caller to map to slots; at most
10000 per filter).

number_columns: [A] "name:int64" or "name:float64"; column a of the numbers store.
value_columns: [C] "name:width": consecutive column ranges of the value_ids store.
program: [B, L, 2 + W]; column leaves carry their operand index in word 1.
operands: [B, P, 4] operand records (filter_columns.h), P >= 1.
value_lookups: [B, Lv] "attr=value" strings ("" padding).
id_lookups: [B, Li] item ids ("" padding).
)doc");

}  // namespace linr
