// Registration of LinrMoLTopK: shape function and documentation.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace linr {

namespace {

absl::Status MoLTopKShape(::tensorflow::shape_inference::InferenceContext* c) {
  namespace errors = ::tensorflow::errors;
  using ::tensorflow::shape_inference::DimensionHandle;
  using ::tensorflow::shape_inference::ShapeHandle;
  const char* names[] = {"queries", "items", "gate_bias", "gate_weight", "mask", "k"};
  const int ranks[] = {3, 3, 2, 2, 2, 0};
  ShapeHandle s[6];
  for (int i = 0; i < 6; ++i) {
    if (!c->WithRank(c->input(i), ranks[i], &s[i]).ok()) {
      return errors::InvalidArgument("LinrMoLTopK: ", names[i], " must have rank ", ranks[i],
                                     ", got shape ", c->DebugString(c->input(i)));
    }
  }
  DimensionHandle width, batch;
  if (!c->Merge(c->Dim(s[0], 2), c->Dim(s[1], 2), &width).ok()) {
    return errors::InvalidArgument("LinrMoLTopK: embedding dimension d mismatch: queries have ",
                                   c->DebugString(c->Dim(s[0], 2)), ", items have ",
                                   c->DebugString(c->Dim(s[1], 2)));
  }
  if (!c->Merge(c->Dim(s[0], 0), c->Dim(s[4], 0), &batch).ok() ||
      !c->Merge(batch, c->Dim(s[2], 0), &batch).ok()) {
    return errors::InvalidArgument("LinrMoLTopK: batch size B mismatch: queries ",
                                   c->DebugString(c->Dim(s[0], 0)), ", gate_bias ",
                                   c->DebugString(c->Dim(s[2], 0)), ", mask ",
                                   c->DebugString(c->Dim(s[4], 0)));
  }
  DimensionHandle k_dim = c->UnknownDim();
  if (const ::tensorflow::Tensor* k_value = c->input_tensor(5)) {
    const int32_t k = k_value->scalar<int32_t>()();
    if (k <= 0) return errors::InvalidArgument("LinrMoLTopK: k must be positive, got ", k);
    k_dim = c->MakeDim(k);
  }
  c->set_output(0, c->Matrix(batch, k_dim));
  c->set_output(1, c->Matrix(batch, k_dim));
  c->set_output(2, c->Vector(batch));
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("LinrMoLTopK")
    .Input("queries: float")
    .Input("items: T")
    .Input("gate_bias: float")
    .Input("gate_weight: float")
    .Input("mask: int32")
    .Input("k: int32")
    .Output("scores: float")
    .Output("indices: int32")
    .Output("count: int32")
    .Attr("T: {float, half, bfloat16} = DT_FLOAT")
    .Attr("softmax: bool = true")
    .SetShapeFn(MoLTopKShape)
    .Doc(R"doc(
Filtered exact top-k by a Mixture-of-Logits score (custom_ops/mol/mol_common.h).

For query b and item i, x[p*Q + q] = <queries[b, p], items[i, q]>,
l = gate_bias[b] + x @ gate_weight, g = softmax(l) (or g = l without softmax),
score = sum_j g[j] x[j]. Item i is eligible when bit i % 32 of mask[b, i / 32]
is set (see LinrFilterMask). The k best eligible items are returned, score
descending, ties by smaller index, NaN as -inf. Neither the [B, N, P*Q] dot
products nor the [B, N] scores are materialised: each query keeps a running
top-k.

queries: [B, P, d] float32, 1 <= P <= 8.
items: [N, Q, d] item embeddings (float32, half or bfloat16), 1 <= Q <= 8.
gate_bias: [B, P*Q] float32, the per-query part of the gate logits.
gate_weight: [P*Q, P*Q] float32, gate logits per dot product.
mask: [B, M] int32 pass bits, M = ceil(N / 32); bits past N are ignored.
k: scalar > 0; may exceed N.
scores: [B, k] scores, -inf in padded slots.
indices: [B, k] item indices, -1 in padded slots.
count: [B] number of valid results, min(k, eligible items).
)doc");

}  // namespace linr
