// Column leaves of filter programs (filter_program.h): exact numbers, value
// ids and item slots, evaluated per item by CPU and CUDA code alike.
//
// Stores (one row per item, rows of the index):
//   numbers   int64 [N, A]  column a holds an int64, or a float64 bit pattern
//   value_ids int32 [N, V]  value-id attributes own column ranges [begin, end);
//                           an item's ids of one attribute are sorted
//                           ascending, unique, padded with -1 at the end
//                           (ELL layout: fixed width, so a row is written in
//                           place, atomically with the item's other rows)
//
// Operand records, int64 [4] per column leaf; instruction header word 1 is
// the record's index. As compiled (LinrCompileFilterColumns):
//   kNumberRange        {column, lo, hi, is_float}   lo <= x <= hi, both
//                       inclusive (strict bounds are moved to the next
//                       representable value by the compiler); lo/hi are
//                       int64 values, or for a float64 column the
//                       OrderedFloatKey of the bounds: every comparison is
//                       an int64 compare, exact and blind to the
//                       flush-to-zero / denormals-are-zero modes TF sets on
//                       its CPU threads (under which 5e-324 > 0.0 is false)
//   kValueAny/kValueAll {begin, end, first, last}    value columns [begin,
//                       end); [first, last) indexes the query's value lookups
//   kIdIn               {0, 0, first, last}          [first, last) indexes the
//                       query's id lookups
// Resolved (by the mask kernel on the host, ResolveColumnOperands): [first,
// last) of list leaves index one sorted, duplicate-free int32 pool of value
// ids / slots; unknown values (id -1) are dropped, and first = -1 marks a
// kValueAll that can never hold (it lists a value no item has).
//
//   ColumnLeaf leaf{stores, resolved_records_of_query, pool};
//   EvalProgramWith(program, length, num_words, bits, ColumnItem{leaf, item});
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_COLUMNS_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_COLUMNS_H_

#include <cstdint>
#include <cstring>

#include "custom_ops/common/host_device.h"
#include "custom_ops/filter/filter_program.h"

namespace linr {

constexpr int kOperandWords = 4;
constexpr int64_t kMaxIdsPerQuery = 10000;

LINR_HOST_DEVICE LINR_FORCE_INLINE double BitsToDouble(int64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
#endif
}

// A float64 bit pattern as an int64 key with the order of the doubles: keys
// compare as the values do (-0.0 and +0.0 are one key, 0; NaNs sort outside
// [-inf, +inf]), and the next double up or down is the key plus or minus 1.
LINR_HOST_DEVICE LINR_FORCE_INLINE int64_t OrderedFloatKey(int64_t bits) {
  if (bits >= 0) return bits;
  const int64_t key = bits ^ INT64_MAX;  // negative: larger magnitude, smaller key
  return key == -1 ? 0 : key;            // -0.0 is +0.0
}

// Binary search in a sorted int32 array.
LINR_HOST_DEVICE LINR_FORCE_INLINE bool SortedContains(const int32_t* sorted, int64_t n,
                                                       int32_t x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo < n && sorted[lo] == x;
}

// The column stores and one query's resolved operands.
struct ColumnLeaf {
  const int64_t* numbers;    // [N, num_numbers]
  int64_t num_numbers;
  const int32_t* value_ids;  // [N, value_width]
  int64_t value_width;
  const int64_t* operands;   // resolved records of this query [P, 4]
  const int32_t* pool;       // sorted lists of all queries

  // Verdict of column leaf `ins` (an instruction row) for one item.
  LINR_HOST_DEVICE LINR_FORCE_INLINE bool Eval(const int32_t* ins, int64_t item) const {
    const int64_t* r = operands + static_cast<int64_t>(ins[1]) * kOperandWords;
    switch (ins[0]) {
      case kNumberRange: {
        const int64_t x = numbers[item * num_numbers + r[0]];
        const int64_t v = r[3] != 0 ? OrderedFloatKey(x) : x;
        return r[1] <= v && v <= r[2];
      }
      case kValueAny:
      case kValueAll: {
        const bool all = ins[0] == kValueAll;
        if (r[2] < 0) return false;
        const int32_t* list = pool + r[2];
        const int64_t n = r[3] - r[2];
        const int32_t* cells = value_ids + item * value_width;
        int64_t found = 0;
        for (int64_t c = r[0]; c < r[1]; ++c) {
          const int32_t v = cells[c];
          if (v < 0) break;  // -1 padding ends the cell
          if (SortedContains(list, n, v)) {
            if (!all) return true;
            ++found;
          }
        }
        return all && found == n;
      }
      case kIdIn:
        return SortedContains(pool + r[2], r[3] - r[2], static_cast<int32_t>(item));
      default:
        return false;
    }
  }
};

// EvalProgramWith's column evaluator for one item.
struct ColumnItem {
  const ColumnLeaf& leaf;
  int64_t item;
  LINR_HOST_DEVICE LINR_FORCE_INLINE bool operator()(const int32_t* ins) const {
    return leaf.Eval(ins, item);
  }
};

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_COLUMNS_H_
