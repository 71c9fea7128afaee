// Registration of LinrAsymmetricHammingTopK: shape function and documentation.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace linr {

namespace {

absl::Status AsymHammingTopKShape(::tensorflow::shape_inference::InferenceContext* c) {
  namespace errors = ::tensorflow::errors;
  using ::tensorflow::shape_inference::DimensionHandle;
  using ::tensorflow::shape_inference::ShapeHandle;
  const char* op = "LinrAsymmetricHammingTopK";
  const char* names[] = {"query_planes", "query_scales", "item_codes", "item_factors", "mask",
                         "k"};
  const int ranks[] = {3, 2, 2, 1, 2, 0};
  ShapeHandle s[6];
  for (int i = 0; i < 6; ++i) {
    if (!c->WithRank(c->input(i), ranks[i], &s[i]).ok()) {
      return errors::InvalidArgument(op, ": ", names[i], " must have rank ", ranks[i],
                                     ", got shape ", c->DebugString(c->input(i)));
    }
  }
  DimensionHandle width, batch, items;
  if (!c->Merge(c->Dim(s[0], 2), c->Dim(s[2], 1), &width).ok()) {
    return errors::InvalidArgument(op, ": code width mismatch: query_planes have ",
                                   c->DebugString(c->Dim(s[0], 2)), " words, item_codes have ",
                                   c->DebugString(c->Dim(s[2], 1)));
  }
  if (!c->Merge(c->Dim(s[0], 0), c->Dim(s[4], 0), &batch).ok() ||
      !c->Merge(batch, c->Dim(s[1], 0), &batch).ok()) {
    return errors::InvalidArgument(op, ": batch size B mismatch between query_planes, "
                                   "query_scales and mask");
  }
  if (!c->Merge(c->Dim(s[2], 0), c->Dim(s[3], 0), &items).ok()) {
    return errors::InvalidArgument(op, ": item_factors must have one value per item code");
  }
  DimensionHandle k_dim = c->UnknownDim();
  if (const ::tensorflow::Tensor* k_value = c->input_tensor(5)) {
    const int32_t k = k_value->scalar<int32_t>()();
    if (k <= 0) return errors::InvalidArgument(op, ": k must be positive, got ", k);
    k_dim = c->MakeDim(k);
  }
  c->set_output(0, c->Matrix(batch, k_dim));
  c->set_output(1, c->Matrix(batch, k_dim));
  c->set_output(2, c->Vector(batch));
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("LinrAsymmetricHammingTopK")
    .Input("query_planes: int32")
    .Input("query_scales: float")
    .Input("item_codes: int32")
    .Input("item_factors: float")
    .Input("mask: int32")
    .Input("k: int32")
    .Output("scores: float")
    .Output("indices: int32")
    .Output("count: int32")
    .SetShapeFn(AsymHammingTopKShape)
    .Doc(R"doc(
Filtered top-k over packed 1-bit codes by an asymmetric (RaBitQ-like) score.

Item i is an m-bit sign code (m = 32 * Wc, bit j in bit j % 32 of word j / 32)
and a factor f_i. Query b is a projection quantized to Bq bits per coordinate,
y_j = lo_b + delta_b * u_j with u_j in [0, 2^Bq), given as Bq bit planes (plane
p packs bit p of every u_j like a code). The score is
f_i * sum_j (2 x_ij - 1) * y_j, computed with bit-sliced popcounts (see
linr_tf.quantization.RaBitQ). For query b, item i is eligible when bit i % 32
of mask[b, i / 32] is set. The k best are returned, score descending, ties by
smaller index, NaN ranked as -inf. The [B, N] score matrix is never
materialised.

query_planes: [B, Bq, Wc] int32 bit planes, 1 <= Bq <= 8.
query_scales: [B, 2] float32 (lo, delta) per query.
item_codes: [N, Wc] int32 packed item codes.
item_factors: [N] float32 per-item factors.
mask: [B, M] int32 pass bits, M = ceil(N / 32); bits past N are ignored.
k: scalar > 0; may exceed N.
scores: [B, k] estimated inner products, -inf in padded slots.
indices: [B, k] item indices, -1 in padded slots.
count: [B] number of valid (non-padded) results, min(k, eligible items).
)doc");

}  // namespace linr
