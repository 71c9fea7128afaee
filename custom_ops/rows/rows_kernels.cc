// Kernels of LinrReadRows and LinrWriteRows (see rows_ops.cc):
// ReadRowsOp<Device> / WriteRowsOp<Device> over RowsFunctor<Device>
// (rows_kernels.h), registered for the CPU and, in GOOGLE_CUDA builds, for the
// GPU (RowsFunctor<GPUDevice> in rows_kernels_gpu.cu.cc).
//
// GPU kernels: one op locks and moves the rows of variables in two memories.
// The ids variable (tf.string) is a host tensor, and TensorFlow has no GPU
// string variable kernels, so it may live in the CPU's resource manager while
// the numeric variables live in the GPU's: a handle of another device is
// resolved in that device's resource manager (LookupVariable), which is only
// allowed for dtypes TensorFlow always keeps on the host. String rows are
// moved on the host (RowsFunctor<CPUDevice>), numeric rows on the op's stream.
// Both ops are exempt from TensorFlow's resource-input colocation (else the
// placer / eager runtime would put the op on the first resource's device, or
// refuse resources of two devices); linr_tf/ops/rows_ops.py places the op on
// the device of the numeric variables.
//
// Memory types of the GPU kernels: resources, rows, min_rows and num_rows are
// host memory (HostMemory), string values / outputs are host memory
// (TensorFlow's MemoryTypesForNode marks every DataTypeAlwaysOnHost argument
// HOST_MEMORY); other values / outputs, int32 included, are device memory as
// registered. The kernels still check ctx->input_memory_type /
// output_memory_type (a node's _input_hostmem / _output_hostmem attributes can
// move an argument to the host) and copy between host and device if needed.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "custom_ops/common/devices.h"
#include "custom_ops/rows/rows_kernels.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/env.h"
#if GOOGLE_CUDA
#include "tensorflow/core/common_runtime/device.h"
#include "tensorflow/core/common_runtime/device_mgr.h"
#include "tensorflow/core/common_runtime/input_colocation_exemption_registry.h"
#include "tensorflow/core/framework/function.h"
#endif

namespace linr {

namespace tf = ::tensorflow;

namespace {

template <typename Device>
constexpr bool kOnGpu = false;
#if GOOGLE_CUDA
template <>
constexpr bool kOnGpu<GPUDevice> = true;
#endif

// Whether a tensor of `dtype` of a variable or argument of the kernel is in
// host memory (always on the CPU; on the GPU for DataTypeAlwaysOnHost types).
template <typename Device>
bool OnHost(tf::DataType dtype) {
  return !kOnGpu<Device> || tf::DataTypeAlwaysOnHost(dtype);
}

// The variable of handle `p`. The CPU kernel, and a variable of the kernel's
// own device, go through tf::LookupResource (which refuses another device).
// The GPU kernel resolves a handle of another device (e.g. the CPU-resident
// string ids) in that device's resource manager, for host-memory dtypes only.
template <typename Device>
tf::Status LookupVariable(tf::OpKernelContext* ctx, const tf::ResourceHandle& p,
                          tf::DataType dtype, tf::Var** var) {
#if GOOGLE_CUDA
  if (kOnGpu<Device> && p.device() != ctx->device()->attributes().name() &&
      tf::DataTypeAlwaysOnHost(dtype)) {
    TF_RETURN_IF_ERROR(p.ValidateType<tf::Var>());
    if (p.IsRefCounting()) {
      TF_ASSIGN_OR_RETURN(*var, p.GetResource<tf::Var>());
      (*var)->Ref();
      return tf::OkStatus();
    }
    tf::ResourceMgr* rm = ctx->resource_manager();  // empty device: the kernel's own
    if (!p.device().empty()) {
      const tf::FunctionLibraryRuntime* flr = ctx->function_library();
      if (flr == nullptr || flr->device_mgr() == nullptr) {
        return tf::errors::FailedPrecondition("no device manager to find device ", p.device());
      }
      tf::Device* dev = nullptr;
      TF_RETURN_IF_ERROR(flr->device_mgr()->LookupDevice(p.device(), &dev));
      rm = dev->resource_manager();
    }
    return rm->Lookup<tf::Var, false>(p.container(), p.name(), var);
  }
#endif
  return tf::LookupResource(ctx, p, var);
}

// The variables named by inputs [0, n), looked up and ordered by mutex
// address (the lock order TensorFlow uses for several variables). The same
// variable given twice is an error: its rows would be written twice.
template <typename Device>
class Variables {
 public:
  Variables(tf::OpKernelContext* ctx, int n, const tf::DataTypeVector& dtypes) {
    vars_.resize(n, nullptr);
    for (int i = 0; i < n; ++i) {
      tf::Var* var = nullptr;
      tf::Status s = LookupVariable<Device>(ctx, tf::HandleFromInput(ctx, i), dtypes[i], &var);
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
template <typename Device>
class LockSet {
 public:
  LockSet(const Variables<Device>& vars, bool exclusive) : vars_(vars), exclusive_(exclusive) {
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
  const Variables<Device>& vars_;
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
  static tf::Status CopyLeadingRows(tf::OpKernelContext*, const tf::Tensor& src, int64_t rows,
                                    tf::Tensor* dst) {
    if (rows == 0) return tf::OkStatus();
    if (src.dtype() == tf::DT_STRING) {
      const auto s = src.flat<tf::tstring>();
      auto d = dst->flat<tf::tstring>();
      const int64_t n = rows * (src.NumElements() / std::max<int64_t>(1, src.dim_size(0)));
      for (int64_t i = 0; i < n; ++i) d(i) = s(i);
      return tf::OkStatus();
    }
    const int64_t row_bytes = src.TotalBytes() / std::max<int64_t>(1, src.dim_size(0));
    std::memcpy(const_cast<char*>(dst->tensor_data().data()), src.tensor_data().data(),
                rows * row_bytes);
    return tf::OkStatus();
  }

  static tf::Status ClearRows(tf::OpKernelContext*, tf::Tensor* t, int64_t from_row) {
    const int64_t rows = t->dim_size(0);
    if (from_row >= rows) return tf::OkStatus();
    const int64_t per_row = t->NumElements() / std::max<int64_t>(1, rows);
    if (t->dtype() == tf::DT_STRING) {
      auto d = t->flat<tf::tstring>();
      for (int64_t i = from_row * per_row; i < rows * per_row; ++i) d(i) = tf::tstring();
      return tf::OkStatus();
    }
    const int64_t row_bytes = t->TotalBytes() / std::max<int64_t>(1, rows);
    std::memset(const_cast<char*>(t->tensor_data().data()) + from_row * row_bytes, 0,
                (rows - from_row) * row_bytes);
    return tf::OkStatus();
  }

  static tf::Status ScatterRows(tf::OpKernelContext*, const tf::Tensor& v, const int64_t* r,
                                int64_t m, tf::Tensor* t) {
    if (m == 0) return tf::OkStatus();
    const int64_t per_row = v.NumElements() / m;
    if (t->dtype() == tf::DT_STRING) {
      auto dst = t->flat<tf::tstring>();
      const auto src = v.flat<tf::tstring>();
      for (int64_t j = 0; j < m; ++j)
        for (int64_t e = 0; e < per_row; ++e) dst(r[j] * per_row + e) = src(j * per_row + e);
      return tf::OkStatus();
    }
    const int64_t row_bytes = v.TotalBytes() / m;
    char* dst = const_cast<char*>(t->tensor_data().data());
    const char* src = v.tensor_data().data();
    for (int64_t j = 0; j < m; ++j) {
      std::memcpy(dst + r[j] * row_bytes, src + j * row_bytes, row_bytes);
    }
    return tf::OkStatus();
  }

  static tf::Status Transfer(tf::OpKernelContext* ctx, const tf::Tensor& src, bool, tf::Tensor* dst,
                             bool) {
    return CopyLeadingRows(ctx, src, src.dims() > 0 ? src.dim_size(0) : 0, dst);
  }
};

namespace {

// RowsFunctor of the memory a tensor of `dtype` is in: host tensors (all of
// them on the CPU, string ones on the GPU) move on the host.
template <typename Device>
struct Rows {
  static tf::Status CopyLeadingRows(tf::OpKernelContext* ctx, const tf::Tensor& src, int64_t rows,
                                    tf::Tensor* dst) {
    return OnHost<Device>(src.dtype())
               ? RowsFunctor<CPUDevice>::CopyLeadingRows(ctx, src, rows, dst)
               : RowsFunctor<Device>::CopyLeadingRows(ctx, src, rows, dst);
  }
  static tf::Status ClearRows(tf::OpKernelContext* ctx, tf::Tensor* t, int64_t from_row) {
    return OnHost<Device>(t->dtype()) ? RowsFunctor<CPUDevice>::ClearRows(ctx, t, from_row)
                                      : RowsFunctor<Device>::ClearRows(ctx, t, from_row);
  }
  // host_rows / device_rows: the same row indices in host / device memory.
  static tf::Status ScatterRows(tf::OpKernelContext* ctx, const tf::Tensor& values,
                                const int64_t* host_rows, const int64_t* device_rows, int64_t m,
                                tf::Tensor* t) {
    return OnHost<Device>(t->dtype())
               ? RowsFunctor<CPUDevice>::ScatterRows(ctx, values, host_rows, m, t)
               : RowsFunctor<Device>::ScatterRows(ctx, values, device_rows, m, t);
  }
};

// A temporary of `dtype` in the memory its variable's buffer would be in.
template <typename Device>
tf::Status AllocateRowsTemp(tf::OpKernelContext* ctx, tf::DataType dtype,
                            const tf::TensorShape& shape, tf::Tensor* out) {
  if (kOnGpu<Device> && OnHost<Device>(dtype)) {
    tf::AllocatorAttributes attr;
    attr.set_on_host(true);
    return ctx->allocate_temp(dtype, shape, out, attr);
  }
  return ctx->allocate_temp(dtype, shape, out);
}

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
    Variables<Device> vars(ctx, n, dtypes_);
    OP_REQUIRES_OK(ctx, vars.status());
    LockSet<Device> locks(vars, /*exclusive=*/false);
    for (int i = 0; i < n; ++i) {
      tf::Var* var = vars[i];
      OP_REQUIRES_OK(ctx, CheckInitialized(var, i));
      const bool var_on_host = OnHost<Device>(dtypes_[i]);
      // (On the CPU every tensor is in host memory, whatever the memory type.)
      const bool out_on_host = !kOnGpu<Device> || ctx->output_memory_type(i) == tf::HOST_MEMORY;
      OP_REQUIRES(ctx, out_on_host || !var_on_host || !tf::DataTypeAlwaysOnHost(dtypes_[i]),
                  tf::errors::Internal("LinrReadRows: output ", i, " of dtype ",
                                       tf::DataTypeString(dtypes_[i]), " not in host memory"));
      if (!var->copy_on_read_mode.load() && var_on_host == out_on_host) {
        ctx->set_output(i, *var->tensor());
        continue;
      }
      // A sparse op has put the variable in copy-on-read mode: it may be
      // updated under a shared lock, so aliasing is not allowed. (Or the GPU
      // runtime wants a device variable's output in host memory.)
      tf::Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(i, var->tensor()->shape(), &out));
      if (var_on_host == out_on_host) {
        OP_REQUIRES_OK(ctx, Rows<Device>::CopyLeadingRows(ctx, *var->tensor(),
                                                          var->tensor()->dim_size(0), out));
      } else {
        OP_REQUIRES_OK(ctx, RowsFunctor<Device>::Transfer(ctx, *var->tensor(), var_on_host, out,
                                                          out_on_host));
      }
    }
  }

 private:
  tf::DataTypeVector dtypes_;
};

// Checks the variables against the values (lock held) and sets the current
// and the new number of rows.
template <typename Device>
tf::Status Plan(tf::OpKernelContext* ctx, const Variables<Device>& vars, int n, int64_t m,
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
  TF_RETURN_IF_ERROR(AllocateRowsTemp<Device>(ctx, src.dtype(), shape, out));
  TF_RETURN_IF_ERROR(Rows<Device>::CopyLeadingRows(ctx, src, num_rows, out));
  return Rows<Device>::ClearRows(ctx, out, num_rows);
}

// True when no reader holds the buffer of any of the variables (read without
// the locks: a hint only, re-checked under them).
template <typename Device>
bool NoReaders(const Variables<Device>& vars, int n) {
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

    Variables<Device> vars(ctx, n, dtypes_);
    OP_REQUIRES_OK(ctx, vars.status());
    // GPU: the rows (host memory) and any value the runtime handed over in the
    // other memory than its variable's, copied once, before any lock.
    const int64_t* device_rows = rows.flat<int64_t>().data();
    std::vector<const tf::Tensor*> values(n);
    for (int i = 0; i < n; ++i) values[i] = &ctx->input(n + 1 + i);
    std::vector<tf::Tensor> staged(n);
    tf::Tensor rows_on_device;
    if (kOnGpu<Device>) {
      OP_REQUIRES_OK(ctx, Stage(ctx, n, rows, &rows_on_device, &staged, &values));
      device_rows = rows_on_device.flat<int64_t>().data();
    }
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
      LockSet<Device> locks(vars, /*exclusive=*/false);
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

    LockSet<Device> locks(vars, /*exclusive=*/true);
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
      OP_REQUIRES_OK(ctx, Rows<Device>::ScatterRows(ctx, *values[i], r.data(), device_rows, m, t));
    }
    tf::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tf::TensorShape({}), &out));
    out->scalar<int64_t>()() = target;
  }

 private:
  // GPU only: rows (host) -> *rows_on_device; a value input in the other
  // memory than its variable's buffer -> (*staged)[i] in the buffer's memory,
  // (*values)[i] pointing to it.
  tf::Status Stage(tf::OpKernelContext* ctx, int n, const tf::Tensor& rows,
                   tf::Tensor* rows_on_device, std::vector<tf::Tensor>* staged,
                   std::vector<const tf::Tensor*>* values) {
    TF_RETURN_IF_ERROR(ctx->allocate_temp(tf::DT_INT64, rows.shape(), rows_on_device));
    const bool rows_on_host = ctx->input_memory_type(n) == tf::HOST_MEMORY;
    TF_RETURN_IF_ERROR(
        RowsFunctor<Device>::Transfer(ctx, rows, rows_on_host, rows_on_device, false));
    for (int i = 0; i < n; ++i) {
      const tf::Tensor& v = ctx->input(n + 1 + i);
      const bool want_host = OnHost<Device>(dtypes_[i]);
      const bool is_host = ctx->input_memory_type(n + 1 + i) == tf::HOST_MEMORY;
      if (want_host == is_host) continue;
      if (tf::DataTypeAlwaysOnHost(dtypes_[i])) {
        return tf::errors::Internal("LinrWriteRows: values[", i, "] of dtype ",
                                    tf::DataTypeString(dtypes_[i]), " not in host memory");
      }
      tf::AllocatorAttributes attr;
      attr.set_on_host(want_host);
      TF_RETURN_IF_ERROR(ctx->allocate_temp(v.dtype(), v.shape(), &(*staged)[i], attr));
      TF_RETURN_IF_ERROR(RowsFunctor<Device>::Transfer(ctx, v, is_host, &(*staged)[i], want_host));
      (*values)[i] = &(*staged)[i];
    }
    return tf::OkStatus();
  }

  tf::DataTypeVector dtypes_;
  int64_t max_wait_us_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("LinrReadRows").Device(tf::DEVICE_CPU), ReadRowsOp<CPUDevice>);
REGISTER_KERNEL_BUILDER(Name("LinrWriteRows").Device(tf::DEVICE_CPU), WriteRowsOp<CPUDevice>);

#if GOOGLE_CUDA
// RowsFunctor<GPUDevice> is defined in rows_kernels_gpu.cu.cc. String
// arguments are host memory without HostMemory (DataTypeAlwaysOnHost).
REGISTER_KERNEL_BUILDER(Name("LinrReadRows").Device(tf::DEVICE_GPU).HostMemory("resources"),
                        ReadRowsOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(Name("LinrWriteRows")
                            .Device(tf::DEVICE_GPU)
                            .HostMemory("resources")
                            .HostMemory("rows")
                            .HostMemory("min_rows")
                            .HostMemory("num_rows"),
                        WriteRowsOp<GPUDevice>);
#endif  // GOOGLE_CUDA

}  // namespace

}  // namespace linr

#if GOOGLE_CUDA
// The ops take resources of several devices (GPU vectors, CPU string ids):
// exempt from colocation with their resource inputs (rows_ops.py places them).
namespace tensorflow {
REGISTER_INPUT_COLOCATION_EXEMPTION("LinrReadRows");
REGISTER_INPUT_COLOCATION_EXEMPTION("LinrWriteRows");
}  // namespace tensorflow
#endif  // GOOGLE_CUDA
