// Registration of LinrMaskedTopK and LinrPrefilterTopK: shape function and
// documentation (both ops share inputs, outputs and results).
#include "custom_ops/select/shape.h"
#include "tensorflow/core/framework/op.h"

namespace linr {

namespace {

// Shape function shared by both top-k ops.
template <const char* const* kOp>
absl::Status TopKShape(::tensorflow::shape_inference::InferenceContext* c) {
  return MaskedTopKShape(c, *kOp, "queries", "items", "embedding dimension d");
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
    .Attr("max_union_rate: float = 1.0")
    .SetShapeFn(TopKShape<&kPrefilterName>)
    .Doc("Filtered exact top-k by explicit pre-filtering: compacts the passing ids\n"
         "and gathers only their rows. Same results as LinrMaskedTopK.\n"
         "Where more than max_union_rate of the items pass some query of the batch\n"
         "(per chunk of items on the CPU; over all items on the GPU, decided on the\n"
         "device), it streams them as LinrMaskedTopK does instead: one op for\n"
         "every pass rate, with no host round trip to choose.\n"
         LINR_TOPK_COMMON_DOC);

#undef LINR_TOPK_COMMON_DOC

}  // namespace linr
