// Kernels of LinrReadRows and LinrWriteRows (see rows_ops.cc):
// ReadRowsOp<Device> / WriteRowsOp<Device> over RowsFunctor<Device>
// (rows_kernels.h), registered for the CPU.
#include <algorithm>
#include <cstring>
#include <vector>

#include "custom_ops/common/devices.h"
#include "custom_ops/rows/rows_kernels.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/env.h"

namespace linr {

namespace tf = ::tensorflow;

namespace {

// The variables named by inputs [0, n), looked up and ordered by mutex
// address (the lock order TensorFlow uses for several variables). The same
// variable given twice is an error: its rows would be written twice.
class Variables {
 public:
  Variables(tf::OpKernelContext* ctx, int n, const tf::DataTypeVector& dtypes) {
    vars_.resize(n, nullptr);
    for (int i = 0; i < n; ++i) {
      tf::Var* var = nullptr;
      tf::Status s = tf::LookupResource(ctx, tf::HandleFromInput(ctx, i), &var);
      if (!s.ok()) {
        status_ = tf::errors::FailedPrecondition("variable ", i, " of ", n,
                                                 " not found: ", s.message());
        return;
      }
      vars_[i] = var;
      if (var->tensor()->dtype() != dtypes[i]) {
        status_ = tf::errors::InvalidArgument(
            "variable ", i, " has dtype ", tf::DataTypeString(var->tensor()->dtype()),
            " but dtypes[", i, "] is ", tf::DataTypeString(dtypes[i]));
        return;
      }
    }
    order_.resize(n);
    for (int i = 0; i < n; ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(),
              [this](int a, int b) { return vars_[a]->mu() < vars_[b]->mu(); });
    for (int i = 1; i < n; ++i) {
      if (vars_[order_[i]] == vars_[order_[i - 1]]) {
        status_ = tf::errors::InvalidArgument("the same variable is given twice (inputs ",
                                              order_[i - 1], " and ", order_[i], ")");
        return;
      }
    }
  }
  ~Variables() {
    for (tf::Var* v : vars_)
      if (v != nullptr) v->Unref();
  }
  const tf::Status& status() const { return status_; }
  tf::Var* operator[](int i) const { return vars_[i]; }
  const std::vector<int>& lock_order() const { return order_; }

 private:
  std::vector<tf::Var*> vars_;
  std::vector<int> order_;
  tf::Status status_;
};

// Holds the mutexes of several variables, exclusive or shared, in the order
// given; releases them in reverse order.
class LockSet {
 public:
  LockSet(const Variables& vars, bool exclusive) : vars_(vars), exclusive_(exclusive) {
    for (int i : vars_.lock_order()) {
      if (exclusive_) {
        vars_[i]->mu()->lock();
      } else {
        vars_[i]->mu()->lock_shared();
      }
    }
  }
  ~LockSet() {
    const auto& order = vars_.lock_order();
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      if (exclusive_) {
        vars_[*it]->mu()->unlock();
      } else {
        vars_[*it]->mu()->unlock_shared();
      }
    }
  }

 private:
  const Variables& vars_;
  const bool exclusive_;
};

tf::Status CheckInitialized(tf::Var* var, int i) {
  if (!var->is_initialized) {
    return tf::errors::FailedPrecondition("variable ", i, " is not initialized");
  }
  if (var->tensor()->dims() < 1) {
    return tf::errors::InvalidArgument("variable ", i, " must have rank >= 1, got shape ",
                                       var->tensor()->shape().DebugString());
  }
  return tf::OkStatus();
}

}  // namespace

template <>
struct RowsFunctor<CPUDevice> {
  static void CopyLeadingRows(tf::OpKernelContext*, const tf::Tensor& src, int64_t rows,
                              tf::Tensor* dst) {
    if (rows == 0) return;
    if (src.dtype() == tf::DT_STRING) {
      const auto s = src.flat<tf::tstring>();
      auto d = dst->flat<tf::tstring>();
      const int64_t n = rows * (src.NumElements() / std::max<int64_t>(1, src.dim_size(0)));
      for (int64_t i = 0; i < n; ++i) d(i) = s(i);
      return;
    }
    const int64_t row_bytes = src.TotalBytes() / std::max<int64_t>(1, src.dim_size(0));
    std::memcpy(const_cast<char*>(dst->tensor_data().data()), src.tensor_data().data(),
                rows * row_bytes);
  }

  static void ClearRows(tf::OpKernelContext*, tf::Tensor* t, int64_t from_row) {
    const int64_t rows = t->dim_size(0);
    if (from_row >= rows) return;
    const int64_t per_row = t->NumElements() / std::max<int64_t>(1, rows);
    if (t->dtype() == tf::DT_STRING) {
      auto d = t->flat<tf::tstring>();
      for (int64_t i = from_row * per_row; i < rows * per_row; ++i) d(i) = tf::tstring();
      return;
    }
    const int64_t row_bytes = t->TotalBytes() / std::max<int64_t>(1, rows);
    std::memset(const_cast<char*>(t->tensor_data().data()) + from_row * row_bytes, 0,
                (rows - from_row) * row_bytes);
  }

  static void ScatterRows(tf::OpKernelContext*, const tf::Tensor& v, const int64_t* r, int64_t m,
                          tf::Tensor* t) {
    if (m == 0) return;
    const int64_t per_row = v.NumElements() / m;
    if (t->dtype() == tf::DT_STRING) {
      auto dst = t->flat<tf::tstring>();
      const auto src = v.flat<tf::tstring>();
      for (int64_t j = 0; j < m; ++j)
        for (int64_t e = 0; e < per_row; ++e) dst(r[j] * per_row + e) = src(j * per_row + e);
      return;
    }
    const int64_t row_bytes = v.TotalBytes() / m;
    char* dst = const_cast<char*>(t->tensor_data().data());
    const char* src = v.tensor_data().data();
    for (int64_t j = 0; j < m; ++j) {
      std::memcpy(dst + r[j] * row_bytes, src + j * row_bytes, row_bytes);
    }
  }
};

namespace {

template <typename Device>
class ReadRowsOp : public tf::OpKernel {
 public:
  explicit ReadRowsOp(tf::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dtypes", &dtypes_));
  }

  void Compute(tf::OpKernelContext* ctx) override {
    const int n = static_cast<int>(dtypes_.size());
    OP_REQUIRES(ctx, n == ctx->num_inputs(),
                tf::errors::InvalidArgument("LinrReadRows: ", ctx->num_inputs(),
                                            " resources but ", n, " dtypes"));
    Variables vars(ctx, n, dtypes_);
    OP_REQUIRES_OK(ctx, vars.status());
    LockSet locks(vars, /*exclusive=*/false);
    for (int i = 0; i < n; ++i) {
      tf::Var* var = vars[i];
      OP_REQUIRES_OK(ctx, CheckInitialized(var, i));
      if (!var->copy_on_read_mode.load()) {
        ctx->set_output(i, *var->tensor());
        continue;
      }
      // A sparse op has put the variable in copy-on-read mode: it may be
      // updated under a shared lock, so aliasing is not allowed.
      tf::Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(i, var->tensor()->shape(), &out));
      RowsFunctor<Device>::CopyLeadingRows(ctx, *var->tensor(), var->tensor()->dim_size(0), out);
    }
  }

 private:
  tf::DataTypeVector dtypes_;
};

// Checks the variables against the values (lock held) and sets the current
// and the new number of rows.
tf::Status Plan(tf::OpKernelContext* ctx, const Variables& vars, int n, int64_t m,
                int64_t min_rows, int64_t* num_rows, int64_t* target) {
  *num_rows = -1;
  for (int i = 0; i < n; ++i) {
    TF_RETURN_IF_ERROR(CheckInitialized(vars[i], i));
    const tf::Tensor& t = *vars[i]->tensor();
    if (*num_rows < 0) *num_rows = t.dim_size(0);
    if (t.dim_size(0) != *num_rows) {
      return tf::errors::FailedPrecondition(
          "LinrWriteRows: variables differ in number of rows: variable 0 has ", *num_rows,
          ", variable ", i, " has ", t.dim_size(0));
    }
    const tf::Tensor& v = ctx->input(n + 1 + i);
    tf::TensorShape want({m});
    for (int d = 1; d < t.dims(); ++d) want.AddDim(t.dim_size(d));
    if (v.shape() != want) {
      return tf::errors::InvalidArgument("LinrWriteRows: values[", i, "] must have shape ",
                                         want.DebugString(), ", got ", v.shape().DebugString());
    }
  }
  *target = min_rows > *num_rows ? std::max(min_rows, 2 * *num_rows) : *num_rows;
  return tf::OkStatus();
}

// Rows in [0, target), each once.
tf::Status CheckRows(const typename tf::TTypes<int64_t>::ConstFlat& r, int64_t m,
                     int64_t target) {
  std::vector<int64_t> sorted(r.data(), r.data() + m);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t j = 0; j < m; ++j) {
    if (sorted[j] < 0 || sorted[j] >= target) {
      return tf::errors::InvalidArgument("LinrWriteRows: row ", sorted[j], " out of range [0, ",
                                         target, ")");
    }
    if (j > 0 && sorted[j] == sorted[j - 1]) {
      return tf::errors::InvalidArgument("LinrWriteRows: row ", sorted[j], " given twice");
    }
  }
  return tf::OkStatus();
}

// A new buffer of `target` rows: the first `num_rows` rows of `src`, then
// zero / empty rows.
template <typename Device>
tf::Status CopyGrown(tf::OpKernelContext* ctx, const tf::Tensor& src, int64_t num_rows,
                     int64_t target, tf::Tensor* out) {
  tf::TensorShape shape = src.shape();
  shape.set_dim(0, target);
  TF_RETURN_IF_ERROR(ctx->allocate_temp(src.dtype(), shape, out));
  RowsFunctor<Device>::CopyLeadingRows(ctx, src, num_rows, out);
  RowsFunctor<Device>::ClearRows(ctx, out, num_rows);
  return tf::OkStatus();
}

// True when no reader holds the buffer of any of the variables (read without
// the locks: a hint only, re-checked under them).
bool NoReaders(const Variables& vars, int n) {
  for (int i = 0; i < n; ++i) {
    if (!vars[i]->tensor()->RefCountIsOne()) return false;
  }
  return true;
}

template <typename Device>
class WriteRowsOp : public tf::OpKernel {
 public:
  explicit WriteRowsOp(tf::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dtypes", &dtypes_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("max_wait_us", &max_wait_us_));
  }

  void Compute(tf::OpKernelContext* ctx) override {
    const int n = static_cast<int>(dtypes_.size());
    const tf::Tensor& rows = ctx->input(n);
    const tf::Tensor& min_rows_t = ctx->input(2 * n + 1);
    OP_REQUIRES(ctx, rows.dims() == 1,
                tf::errors::InvalidArgument("LinrWriteRows: rows must be [M], got shape ",
                                            rows.shape().DebugString()));
    OP_REQUIRES(ctx, min_rows_t.dims() == 0,
                tf::errors::InvalidArgument("LinrWriteRows: min_rows must be a scalar"));
    const int64_t m = rows.dim_size(0);
    const int64_t min_rows = min_rows_t.scalar<int64_t>()();
    OP_REQUIRES(ctx, min_rows >= 0,
                tf::errors::InvalidArgument("LinrWriteRows: min_rows must be >= 0, got ",
                                            min_rows));

    Variables vars(ctx, n, dtypes_);
    OP_REQUIRES_OK(ctx, vars.status());
    // Give in-flight searches up to max_wait_us to drop their snapshot, so the
    // write can go in place instead of copying the variables. Readers are not
    // blocked meanwhile (no lock is held), so this cannot deadlock.
    if (max_wait_us_ > 0 && !NoReaders(vars, n)) {
      tf::Env* env = tf::Env::Default();
      const uint64_t deadline = env->NowMicros() + max_wait_us_;
      while (!NoReaders(vars, n) && env->NowMicros() < deadline) {
        env->SleepForMicroseconds(20);
      }
    }
    // Plan under shared locks (searches keep running): checks, the new number
    // of rows, and which buffers must be copied (grown, or held by a reader).
    int64_t num_rows = -1, target = -1;
    std::vector<tf::Tensor> old(n);
    std::vector<bool> copy(n, false);
    {
      LockSet locks(vars, /*exclusive=*/false);
      OP_REQUIRES_OK(ctx, Plan(ctx, vars, n, m, min_rows, &num_rows, &target));
      for (int i = 0; i < n; ++i) {
        const tf::Tensor* t = vars[i]->tensor();
        if (target != num_rows || !t->RefCountIsOne()) {
          copy[i] = true;
          old[i] = *t;  // our reference keeps every writer from writing it in place
        }
      }
    }
    const auto r = rows.flat<int64_t>();
    OP_REQUIRES_OK(ctx, CheckRows(r, m, target));
    // Copy without any lock: searches are not blocked by a large copy.
    std::vector<tf::Tensor> fresh(n);
    for (int i = 0; i < n; ++i) {
      if (!copy[i]) continue;
      OP_REQUIRES_OK(ctx, CopyGrown<Device>(ctx, old[i], num_rows, target, &fresh[i]));
    }

    LockSet locks(vars, /*exclusive=*/true);
    // Another writer got in between (the buffers or sizes changed): redo the
    // plan under the exclusive locks and copy there.
    bool unchanged = true;
    for (int i = 0; i < n; ++i) {
      const tf::Tensor* t = vars[i]->tensor();
      if (t->dims() < 1 || t->dim_size(0) != num_rows ||
          (copy[i] && !t->SharesBufferWith(old[i]))) {
        unchanged = false;
      }
    }
    old.clear();
    if (!unchanged) {
      OP_REQUIRES_OK(ctx, Plan(ctx, vars, n, m, min_rows, &num_rows, &target));
      OP_REQUIRES_OK(ctx, CheckRows(r, m, target));
    }
    for (int i = 0; i < n; ++i) {
      tf::Tensor* t = vars[i]->tensor();
      if (unchanged && copy[i]) {
        *t = fresh[i];
      } else if (target != num_rows || !t->RefCountIsOne()) {
        // A reader arrived since the plan: copy-on-write under the lock.
        tf::Tensor grown;
        OP_REQUIRES_OK(ctx, CopyGrown<Device>(ctx, *t, num_rows, target, &grown));
        *t = grown;
      }
      RowsFunctor<Device>::ScatterRows(ctx, ctx->input(n + 1 + i), r.data(), m, t);
    }
    tf::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tf::TensorShape({}), &out));
    out->scalar<int64_t>()() = target;
  }

 private:
  tf::DataTypeVector dtypes_;
  int64_t max_wait_us_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("LinrReadRows").Device(tf::DEVICE_CPU), ReadRowsOp<CPUDevice>);
REGISTER_KERNEL_BUILDER(Name("LinrWriteRows").Device(tf::DEVICE_CPU), WriteRowsOp<CPUDevice>);

}  // namespace

}  // namespace linr
