// Registration of LinrMaskedTopK and LinrPrefilterTopK: shape function and
// documentation (both ops share inputs, outputs and results).
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
Status MergeDim(InferenceContext* c, const char* op, DimensionHandle a, DimensionHandle b,
                const char* what, DimensionHandle* out) {
  if (!c->Merge(a, b, out).ok()) {
    return errors::InvalidArgument(op, ": ", what, " mismatch: ", c->DebugString(a),
                                   " vs ", c->DebugString(b));
  }
  return absl::OkStatus();
}

Status WithRankNamed(InferenceContext* c, const char* op, int input, int rank,
                     const char* name, ShapeHandle* out) {
  if (!c->WithRank(c->input(input), rank, out).ok()) {
    return errors::InvalidArgument(op, ": ", name, " must have rank ", rank,
                                   ", got shape ", c->DebugString(c->input(input)));
  }
  return absl::OkStatus();
}


// Shape function shared by both top-k ops.
template <const char* const* kOp>
Status TopKShape(InferenceContext* c) {
  const char* op = *kOp;
  ShapeHandle queries, items, mask, k;
  TF_RETURN_IF_ERROR(WithRankNamed(c, op, 0, 2, "queries", &queries));
  TF_RETURN_IF_ERROR(WithRankNamed(c, op, 1, 2, "items", &items));
  TF_RETURN_IF_ERROR(WithRankNamed(c, op, 2, 2, "mask", &mask));
  TF_RETURN_IF_ERROR(WithRankNamed(c, op, 3, 0, "k", &k));
  DimensionHandle batch, dim;
  TF_RETURN_IF_ERROR(MergeDim(c, op, c->Dim(queries, 1), c->Dim(items, 1),
                              "embedding dimension d (queries vs items)", &dim));
  TF_RETURN_IF_ERROR(MergeDim(c, op, c->Dim(queries, 0), c->Dim(mask, 0),
                              "batch size B (queries vs mask)", &batch));
  if (c->ValueKnown(c->Dim(items, 0)) && c->ValueKnown(c->Dim(mask, 1))) {
    const int64_t n = c->Value(c->Dim(items, 0));
    const int64_t m = c->Value(c->Dim(mask, 1));
    if (m != (n + 31) / 32) {
      return errors::InvalidArgument(op, ": mask words M mismatch: N=", n,
                                     " items need M=ceil(N/32)=", (n + 31) / 32,
                                     " words but mask has M=", m);
    }
  }
  DimensionHandle k_dim = c->UnknownDim();
  if (const ::tensorflow::Tensor* k_value = c->input_tensor(3)) {
    const int32_t k_int = k_value->scalar<int32_t>()();
    if (k_int <= 0) return errors::InvalidArgument(op, ": k must be positive, got ", k_int);
    k_dim = c->MakeDim(k_int);
  }
  c->set_output(0, c->Matrix(batch, k_dim));
  c->set_output(1, c->Matrix(batch, k_dim));
  c->set_output(2, c->Vector(batch));
  return absl::OkStatus();
}

const char* const kMaskedName = "LinrMaskedTopK";
const char* const kPrefilterName = "LinrPrefilterTopK";

}  // namespace

#define LINR_TOPK_COMMON_DOC                                                           \
  "\nFor query b, item i is eligible when bit i % 32 of mask[b, i / 32] is set\n"     \
  "(see LinrFilterMask). Eligible items are scored with dot(queries[b], items[i])\n" \
  "(accumulated in float32, one fixed summation order) and the k best are\n"         \
  "returned, ordered by score descending, ties by smaller index. NaN scores rank\n"  \
  "as -inf. The [B, N] score matrix is never materialised.\n\n"                     \
  "queries: [B, d] float32.\n"                                                         \
  "items: [N, d] item embeddings (float32, half or bfloat16).\n"                      \
  "mask: [B, M] int32 pass bits, M = ceil(N / 32); bits past N are ignored.\n"        \
  "k: scalar > 0; may exceed N.\n"                                                     \
  "scores: [B, k] scores, -inf in padded slots.\n"                                     \
  "indices: [B, k] item indices, -1 in padded slots.\n"                                \
  "count: [B] number of valid (non-padded) results, min(k, eligible items).\n"

REGISTER_OP("LinrMaskedTopK")
    .Input("queries: float")
    .Input("items: T")
    .Input("mask: int32")
    .Input("k: int32")
    .Output("scores: float")
    .Output("indices: int32")
    .Output("count: int32")
    .Attr("T: {float, half, bfloat16} = DT_FLOAT")
    .SetShapeFn(TopKShape<&kMaskedName>)
    .Doc("Filtered exact top-k by similarity masking: streams all items once,\n"
         "skipping groups of items that no query lets pass.\n" LINR_TOPK_COMMON_DOC);

REGISTER_OP("LinrPrefilterTopK")
    .Input("queries: float")
    .Input("items: T")
    .Input("mask: int32")
    .Input("k: int32")
    .Output("scores: float")
    .Output("indices: int32")
    .Output("count: int32")
    .Attr("T: {float, half, bfloat16} = DT_FLOAT")
    .SetShapeFn(TopKShape<&kPrefilterName>)
    .Doc("Filtered exact top-k by explicit pre-filtering: compacts the passing ids\n"
         "and gathers only their rows. Same results as LinrMaskedTopK.\n"
         LINR_TOPK_COMMON_DOC);

#undef LINR_TOPK_COMMON_DOC

}  // namespace linr
