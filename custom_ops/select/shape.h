// Shape function shared by every top-k op over a pass mask (float and 1-bit):
// inputs (queries [B, X], items [N, X], mask [B, ceil(N/32)], k scalar),
// outputs (scores [B, k], indices [B, k], count [B]).
#ifndef LINR_CUSTOM_OPS_SELECT_SHAPE_H_
#define LINR_CUSTOM_OPS_SELECT_SHAPE_H_

#include <cstdint>

#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor.h"

namespace linr {

// Checks ranks and the B / M dimensions, sets the outputs. `what_width` names
// the shared width X in the mismatch message, e.g. "embedding dimension d".
inline absl::Status MaskedTopKShape(::tensorflow::shape_inference::InferenceContext* c,
                                    const char* op, const char* query_name,
                                    const char* item_name, const char* what_width) {
  namespace errors = ::tensorflow::errors;
  using ::tensorflow::shape_inference::DimensionHandle;
  using ::tensorflow::shape_inference::ShapeHandle;
  const char* names[] = {query_name, item_name, "mask", "k"};
  const int ranks[] = {2, 2, 2, 0};
  ShapeHandle shapes[4];
  for (int i = 0; i < 4; ++i) {
    if (!c->WithRank(c->input(i), ranks[i], &shapes[i]).ok()) {
      return errors::InvalidArgument(op, ": ", names[i], " must have rank ", ranks[i],
                                     ", got shape ", c->DebugString(c->input(i)));
    }
  }
  const ShapeHandle queries = shapes[0], items = shapes[1], mask = shapes[2];
  DimensionHandle width, batch;
  if (!c->Merge(c->Dim(queries, 1), c->Dim(items, 1), &width).ok()) {
    return errors::InvalidArgument(op, ": ", what_width, " mismatch: ", query_name, " have ",
                                   c->DebugString(c->Dim(queries, 1)), ", ", item_name,
                                   " have ", c->DebugString(c->Dim(items, 1)));
  }
  if (!c->Merge(c->Dim(queries, 0), c->Dim(mask, 0), &batch).ok()) {
    return errors::InvalidArgument(op, ": batch size B mismatch: ", query_name, " ",
                                   c->DebugString(c->Dim(queries, 0)), ", mask ",
                                   c->DebugString(c->Dim(mask, 0)));
  }
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
    const int32_t k = k_value->scalar<int32_t>()();
    if (k <= 0) return errors::InvalidArgument(op, ": k must be positive, got ", k);
    k_dim = c->MakeDim(k);
  }
  c->set_output(0, c->Matrix(batch, k_dim));
  c->set_output(1, c->Matrix(batch, k_dim));
  c->set_output(2, c->Vector(batch));
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_SHAPE_H_
