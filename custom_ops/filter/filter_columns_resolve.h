// Host side of LinrFilterMaskColumns: checks the column inputs and resolves
// each query's operand records (filter_columns.h) into sorted id lists, shared
// by the CPU and GPU kernels so both reject bad input with the same messages.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_COLUMNS_RESOLVE_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_COLUMNS_RESOLVE_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "custom_ops/filter/filter_columns.h"
#include "custom_ops/filter/filter_program.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/errors.h"

namespace linr {

// Resolved operands: records [B, P, 4] (list leaves index `pool`) and the pool.
struct ResolvedColumns {
  std::vector<int64_t> records;
  std::vector<int32_t> pool;
  int64_t num_records = 0;  // P
};

// Checks operands [B, P, 4], value_refs [B, Lv], id_slots [B, Li], numbers
// [N, A], value_ids [N, V] against the (already validated) programs and
// resolves them.
inline absl::Status ResolveColumnOperands(const tensorflow::Tensor& program,
                                          const tensorflow::Tensor& operands,
                                          const tensorflow::Tensor& value_refs,
                                          const tensorflow::Tensor& id_slots,
                                          const tensorflow::Tensor& numbers,
                                          const tensorflow::Tensor& value_ids,
                                          int64_t num_items, ResolvedColumns* out) {
  namespace errors = ::tensorflow::errors;
  const int64_t batch = program.dim_size(0), length = program.dim_size(1);
  const int64_t row = program.dim_size(2);
  if (operands.dims() != 3 || operands.dim_size(0) != batch || operands.dim_size(2) != 4 ||
      value_refs.dims() != 2 || value_refs.dim_size(0) != batch || id_slots.dims() != 2 ||
      id_slots.dim_size(0) != batch) {
    return errors::InvalidArgument(
        "LinrFilterMaskColumns: operands must be [B, P, 4], value_refs [B, Lv], id_slots [B, Li] "
        "with B = ", batch, "; got ", operands.shape().DebugString(), ", ",
        value_refs.shape().DebugString(), ", ", id_slots.shape().DebugString());
  }
  if (numbers.dims() != 2 || numbers.dim_size(0) != num_items || value_ids.dims() != 2 ||
      value_ids.dim_size(0) != num_items) {
    return errors::InvalidArgument(
        "LinrFilterMaskColumns: numbers must be [N, A] and value_ids [N, V] with N = ", num_items,
        "; got ", numbers.shape().DebugString(), ", ", value_ids.shape().DebugString());
  }
  const int64_t num_records = operands.dim_size(1);
  const int64_t num_numbers = numbers.dim_size(1), width = value_ids.dim_size(1);
  const int64_t lv = value_refs.dim_size(1), li = id_slots.dim_size(1);
  const int32_t* prog = program.flat<int32_t>().data();
  const int64_t* rec = operands.flat<int64_t>().data();
  const int32_t* refs = value_refs.flat<int32_t>().data();
  const int64_t* slots = id_slots.flat<int64_t>().data();
  out->num_records = num_records;
  out->records.assign(rec, rec + operands.NumElements());
  out->pool.clear();
  std::vector<int32_t> list;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < length; ++i) {
      const int32_t* ins = prog + (b * length + i) * row;
      if (!IsColumnLeaf(ins[0])) continue;
      const int64_t index = ins[1];
      if (index < 0 || index >= num_records) {
        return errors::InvalidArgument("LinrFilterMaskColumns: query ", b, " instruction ", i,
                                       ": operand ", index, " outside [0, ", num_records, ")");
      }
      int64_t* r = out->records.data() + (b * num_records + index) * 4;
      const int64_t* given = rec + (b * num_records + index) * 4;
      if (ins[0] == kNumberRange) {
        if (given[0] < 0 || given[0] >= num_numbers || (given[3] != 0 && given[3] != 1)) {
          return errors::InvalidArgument("LinrFilterMaskColumns: query ", b, ": number column ",
                                         given[0], " outside [0, ", num_numbers, ")");
        }
        continue;
      }
      const bool is_ids = ins[0] == kIdIn;
      const int64_t limit = is_ids ? li : lv;
      if (given[2] < 0 || given[2] > given[3] || given[3] > limit ||
          (!is_ids && (given[0] < 0 || given[0] > given[1] || given[1] > width))) {
        return errors::InvalidArgument("LinrFilterMaskColumns: query ", b, ": operand ", index,
                                       " has ranges outside the value_ids / lookups");
      }
      list.clear();
      bool unknown = false;
      for (int64_t k = given[2]; k < given[3]; ++k) {
        const int64_t v = is_ids ? slots[b * li + k] : refs[b * lv + k];
        if (v < 0 || (is_ids && v >= num_items)) {
          unknown = true;  // an unknown value or id matches no item
          continue;
        }
        list.push_back(static_cast<int32_t>(v));
      }
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
      if (ins[0] == kValueAll && unknown) {
        r[2] = r[3] = -1;  // lists a value no item holds
        continue;
      }
      r[2] = static_cast<int64_t>(out->pool.size());
      out->pool.insert(out->pool.end(), list.begin(), list.end());
      r[3] = static_cast<int64_t>(out->pool.size());
    }
  }
  if (out->pool.empty()) out->pool.push_back(0);  // never empty (device copies)
  return absl::OkStatus();
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_COLUMNS_RESOLVE_H_
