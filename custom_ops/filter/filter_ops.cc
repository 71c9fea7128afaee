// Registration of LinrCompileFilter: shape function and documentation.
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
    .Output("clauses: int32")
    .Output("num_clauses: int32")
    .Attr("unknown_value: {'error', 'match_none'} = 'error'")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle filters, bit_keys;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &filters));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &bit_keys));
      DimensionHandle batch = c->Dim(filters, 0);
      DimensionHandle num_bits = c->Dim(bit_keys, 0);
      DimensionHandle num_words = c->UnknownDim();
      if (c->ValueKnown(num_bits)) {
        const int64_t nb = c->Value(num_bits);
        num_words = c->MakeDim(nb == 0 ? 1 : (nb + 31) / 32);
      }
      c->set_output(0, c->MakeShape({batch, c->UnknownDim(), num_words}));
      c->set_output(1, c->Vector(batch));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Compiles attribute filter expressions into clause bitsets.

The language is `expr := clause ("AND" clause)*` with
`clause := attr "=" value | attr "IN" "(" value ("," value)* ")"`; values are
quoted strings or bare tokens [A-Za-z0-9_.-]+; keywords are case-insensitive.
An empty filter passes everything.

An item with bitset x passes filter b iff for every c < num_clauses[b],
x & clauses[b, c, :] has a nonzero word.

filters: [B] filter expressions.
bit_keys: [NB] "attr=value" names of the attribute bits; keys starting with
  "__" are reserved.
clauses: [B, C, W] clause bitsets, W = max(1, ceil(NB / 32)), C = the largest
  clause count in the batch; rows past num_clauses[b] are zero.
num_clauses: [B] number of clauses per filter.
unknown_value: 'error' rejects values missing from bit_keys; 'match_none' lets
  them contribute no bit (a clause without bits matches nothing).
)doc");

}  // namespace linr
