// Registration of LinrHammingTopK: shape function and documentation.
#include "custom_ops/select/shape.h"
#include "tensorflow/core/framework/op.h"

namespace linr {

namespace {

absl::Status HammingTopKShape(::tensorflow::shape_inference::InferenceContext* c) {
  return MaskedTopKShape(c, "LinrHammingTopK", "query_codes", "item_codes",
                         "code width");
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
matrix is never materialised. Very large k (min(k, N) > 4096 on the CPU,
> 16384 on the GPU) is selected by counting (a score histogram, the threshold
score, a stable scatter to the output slots) with the same outputs.

query_codes: [B, Wc] int32 packed query codes.
item_codes: [N, Wc] int32 packed item codes.
mask: [B, M] int32 pass bits, M = ceil(N / 32); bits past N are ignored.
k: scalar > 0; may exceed N; B * k <= 2^31 output slots.
scores: [B, k] matching-bit counts (float32), -inf in padded slots.
indices: [B, k] item indices, -1 in padded slots.
count: [B] number of valid (non-padded) results, min(k, eligible items).
)doc");

}  // namespace linr
