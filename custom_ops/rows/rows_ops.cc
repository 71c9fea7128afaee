// Registration of the index-state ops: an atomic snapshot of several
// variables and an atomic row write into several variables.
//
// The item index keeps one row per slot in several resource variables (ids,
// versions, attribute bitsets, vectors, codes). A search must see every row of
// one version: LinrReadRows reads all the variables under their locks at once
// (no copy: the outputs alias the buffers), and LinrWriteRows writes rows of
// all of them under their exclusive locks, copying a buffer first only while a
// reader still holds it (copy-on-write). Neither op puts a variable into
// TensorFlow's copy-on-read mode, which sparse ops (ResourceGather,
// ResourceScatterUpdate) would do for good, making every later read a full copy.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace linr {

using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("LinrReadRows")
    .Input("resources: N * resource")
    .Output("values: dtypes")
    .Attr("N: int >= 1")
    .Attr("dtypes: list(type)")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      // Variables of the index have an unknown number of rows: shapes come
      // from the handle data when known, else unknown.
      for (int i = 0; i < c->num_outputs(); ++i) {
        const auto* handle_data = c->input_handle_shapes_and_types(i);
        if (handle_data != nullptr && handle_data->size() == 1) {
          c->set_output(i, (*handle_data)[0].shape);
        } else {
          c->set_output(i, c->UnknownShape());
        }
      }
      return absl::OkStatus();
    })
    .Doc(R"doc(
Reads N resource variables as one consistent snapshot.

All variables are locked (shared) together, so no LinrWriteRows can fall
between the reads: rows of the outputs always belong to one version of the
index. The outputs alias the variables' buffers (no copy); a later write
copies the buffer first while it is still referenced.

resources: the variables, at least one.
values: their values, dtypes[i] being the dtype of resources[i].
)doc");

REGISTER_OP("LinrWriteRows")
    .Input("resources: N * resource")
    .Input("rows: int64")
    .Input("values: dtypes")
    .Input("min_rows: int64")
    .Output("num_rows: int64")
    .Attr("N: int >= 1")
    .Attr("dtypes: list(type)")
    .Attr("max_wait_us: int = 50000")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle unused;
      const int n = c->num_inputs() / 2 - 1;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(n), 1, &unused));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(c->num_inputs() - 1), 0, &unused));
      c->set_output(0, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
Writes rows of N resource variables atomically (readers see all or none).

Every variable must have the same number of rows R. Under the exclusive locks
of all variables: if min_rows > R, each variable grows to max(min_rows, 2 R)
rows (new rows zero / empty string); then values[i][j] is written to row
rows[j] of variable i. A buffer still referenced by a reader (e.g. the
snapshot of an in-flight search) is copied before the write, so that reader
keeps its version; to avoid that copy, the op first waits up to max_wait_us
(without holding any lock) for in-flight readers to finish.

resources: the variables.
rows: [M] row indices, each in [0, max(R, min_rows)), no duplicates.
values: values[i] is [M] + shape(resources[i])[1:], of dtype dtypes[i].
min_rows: scalar, the number of rows the variables must have at least.
num_rows: the number of rows after the write.
)doc");

}  // namespace linr
