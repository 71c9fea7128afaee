// Registration of LinrMaskedTopK: shape function and documentation.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor.h"

namespace linr {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;
namespace errors = ::tensorflow::errors;

namespace {

// Merges two dimensions or fails with a message naming both operands.
Status MergeDim(InferenceContext* c, DimensionHandle a, DimensionHandle b, const char* what,
                DimensionHandle* out) {
  if (!c->Merge(a, b, out).ok()) {
    return errors::InvalidArgument("LinrMaskedTopK: ", what, " mismatch: ", c->DebugString(a),
                                   " vs ", c->DebugString(b));
  }
  return absl::OkStatus();
}

Status WithRankNamed(InferenceContext* c, int input, int rank, const char* name,
                     ShapeHandle* out) {
  if (!c->WithRank(c->input(input), rank, out).ok()) {
    return errors::InvalidArgument("LinrMaskedTopK: ", name, " must have rank ", rank,
                                   ", got shape ", c->DebugString(c->input(input)));
  }
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("LinrMaskedTopK")
    .Input("queries: float")
    .Input("items: T")
    .Input("item_bits: int32")
    .Input("clauses: int32")
    .Input("num_clauses: int32")
    .Input("k: int32")
    .Output("scores: float")
    .Output("indices: int32")
    .Output("count: int32")
    .Attr("T: {float, half, bfloat16} = DT_FLOAT")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle queries, items, item_bits, clauses, num_clauses, k;
      TF_RETURN_IF_ERROR(WithRankNamed(c, 0, 2, "queries", &queries));
      TF_RETURN_IF_ERROR(WithRankNamed(c, 1, 2, "items", &items));
      TF_RETURN_IF_ERROR(WithRankNamed(c, 2, 2, "item_bits", &item_bits));
      TF_RETURN_IF_ERROR(WithRankNamed(c, 3, 3, "clauses", &clauses));
      TF_RETURN_IF_ERROR(WithRankNamed(c, 4, 1, "num_clauses", &num_clauses));
      TF_RETURN_IF_ERROR(WithRankNamed(c, 5, 0, "k", &k));
      DimensionHandle batch, dim, num_items, num_words;
      TF_RETURN_IF_ERROR(MergeDim(c, c->Dim(queries, 1), c->Dim(items, 1),
                                  "embedding dimension d (queries vs items)", &dim));
      TF_RETURN_IF_ERROR(MergeDim(c, c->Dim(items, 0), c->Dim(item_bits, 0),
                                  "number of items N (items vs item_bits)", &num_items));
      TF_RETURN_IF_ERROR(MergeDim(c, c->Dim(item_bits, 1), c->Dim(clauses, 2),
                                  "bitset words W (item_bits vs clauses)", &num_words));
      TF_RETURN_IF_ERROR(MergeDim(c, c->Dim(queries, 0), c->Dim(clauses, 0),
                                  "batch size B (queries vs clauses)", &batch));
      TF_RETURN_IF_ERROR(MergeDim(c, batch, c->Dim(num_clauses, 0),
                                  "batch size B (queries vs num_clauses)", &batch));
      DimensionHandle k_dim = c->UnknownDim();
      if (const ::tensorflow::Tensor* k_value = c->input_tensor(5)) {
        const int32_t k_int = k_value->scalar<int32_t>()();
        if (k_int <= 0) {
          return errors::InvalidArgument("LinrMaskedTopK: k must be positive, got ", k_int);
        }
        k_dim = c->MakeDim(k_int);
      }
      c->set_output(0, c->Matrix(batch, k_dim));
      c->set_output(1, c->Matrix(batch, k_dim));
      c->set_output(2, c->Vector(batch));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Filtered exact top-k by dot product, without materialising [B, N] scores.

For query b, item i is eligible when it passes the query's compiled filter
(see LinrCompileFilter): for all c < num_clauses[b], item_bits[i] &
clauses[b, c] has a nonzero word. Eligible items are scored with
dot(queries[b], items[i]) (accumulated in float32) and the k best are returned,
ordered by score descending, ties by smaller index. NaN scores rank as -inf.

queries: [B, d] float32.
items: [N, d] item embeddings (float32, half or bfloat16).
item_bits: [N, W] attribute bitsets.
clauses: [B, C, W] compiled filter clauses.
num_clauses: [B] clauses in use per query, each in [0, C].
k: scalar > 0; may exceed N.
scores: [B, k] scores, -inf in padded slots.
indices: [B, k] item indices, -1 in padded slots.
count: [B] number of valid (non-padded) results, min(k, eligible items).
)doc");

}  // namespace linr
