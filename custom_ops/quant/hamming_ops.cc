// Registration of LinrHammingTopK: shape function and documentation.
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

constexpr const char* kOp = "LinrHammingTopK";

Status WithRankNamed(InferenceContext* c, int input, int rank, const char* name,
                     ShapeHandle* out) {
  if (!c->WithRank(c->input(input), rank, out).ok()) {
    return errors::InvalidArgument(kOp, ": ", name, " must have rank ", rank, ", got shape ",
                                   c->DebugString(c->input(input)));
  }
  return absl::OkStatus();
}

Status HammingTopKShape(InferenceContext* c) {
  ShapeHandle queries, items, mask, k;
  TF_RETURN_IF_ERROR(WithRankNamed(c, 0, 2, "query_codes", &queries));
  TF_RETURN_IF_ERROR(WithRankNamed(c, 1, 2, "item_codes", &items));
  TF_RETURN_IF_ERROR(WithRankNamed(c, 2, 2, "mask", &mask));
  TF_RETURN_IF_ERROR(WithRankNamed(c, 3, 0, "k", &k));
  DimensionHandle words, batch;
  if (!c->Merge(c->Dim(queries, 1), c->Dim(items, 1), &words).ok()) {
    return errors::InvalidArgument(kOp, ": code width mismatch: query codes have Wc=",
                                   c->DebugString(c->Dim(queries, 1)),
                                   " words but item codes have Wc=",
                                   c->DebugString(c->Dim(items, 1)));
  }
  if (!c->Merge(c->Dim(queries, 0), c->Dim(mask, 0), &batch).ok()) {
    return errors::InvalidArgument(kOp, ": batch size B mismatch: query_codes ",
                                   c->DebugString(c->Dim(queries, 0)), ", mask ",
                                   c->DebugString(c->Dim(mask, 0)));
  }
  if (c->ValueKnown(c->Dim(items, 0)) && c->ValueKnown(c->Dim(mask, 1))) {
    const int64_t n = c->Value(c->Dim(items, 0));
    const int64_t m = c->Value(c->Dim(mask, 1));
    if (m != (n + 31) / 32) {
      return errors::InvalidArgument(kOp, ": mask words M mismatch: N=", n,
                                     " items need M=ceil(N/32)=", (n + 31) / 32,
                                     " words but mask has M=", m);
    }
  }
  DimensionHandle k_dim = c->UnknownDim();
  if (const ::tensorflow::Tensor* k_value = c->input_tensor(3)) {
    const int32_t k_int = k_value->scalar<int32_t>()();
    if (k_int <= 0) return errors::InvalidArgument(kOp, ": k must be positive, got ", k_int);
    k_dim = c->MakeDim(k_int);
  }
  c->set_output(0, c->Matrix(batch, k_dim));
  c->set_output(1, c->Matrix(batch, k_dim));
  c->set_output(2, c->Vector(batch));
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("LinrHammingTopK")
    .Input("query_codes: int32")
    .Input("item_codes: int32")
    .Input("mask: int32")
    .Input("k: int32")
    .Output("scores: float")
    .Output("indices: int32")
    .Output("count: int32")
    .SetShapeFn(HammingTopKShape)
    .Doc(R"doc(
Filtered top-k over packed binary codes by number of matching bits.

Codes hold m = 32 * Wc bits, bit j in bit j % 32 of word j / 32 (e.g. from
linr_tf.quantization.SignOPORP). For query b, item i is eligible when bit
i % 32 of mask[b, i / 32] is set (see LinrFilterMask). Eligible items are
scored with m - popcount(query_codes[b] XOR item_codes[i]) and the k best are
returned, ordered by score descending, ties by smaller index. The [B, N] score
matrix is never materialised.

query_codes: [B, Wc] int32 packed query codes.
item_codes: [N, Wc] int32 packed item codes.
mask: [B, M] int32 pass bits, M = ceil(N / 32); bits past N are ignored.
k: scalar > 0; may exceed N.
scores: [B, k] matching-bit counts (float32), -inf in padded slots.
indices: [B, k] item indices, -1 in padded slots.
count: [B] number of valid (non-padded) results, min(k, eligible items).
)doc");

}  // namespace linr
