// Evaluation of compiled attribute filters against item bitsets.
//
// A compiled filter is a conjunction of `num_clauses` clauses; each clause is a
// bitset of W 32-bit words (the OR of the bits of its allowed values). An item
// with bitset `item_bits` passes when every clause shares at least one set bit
// with it. Usable from host and device code.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_EVAL_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_EVAL_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace linr {

// True when `item_bits` (W words) intersects `clause` (W words).
LINR_HOST_DEVICE LINR_FORCE_INLINE bool ClauseMatches(const int32_t* item_bits,
                                                      const int32_t* clause,
                                                      int64_t num_words) {
  int32_t any = 0;
  for (int64_t w = 0; w < num_words; ++w) any |= item_bits[w] & clause[w];
  return any != 0;
}

// True when the item passes all clauses; `clauses` is [num_clauses, W]
// row-major. Zero clauses means no filter: everything passes.
LINR_HOST_DEVICE LINR_FORCE_INLINE bool PassesFilter(const int32_t* item_bits,
                                                     const int32_t* clauses,
                                                     int64_t num_clauses,
                                                     int64_t num_words) {
  for (int64_t c = 0; c < num_clauses; ++c) {
    if (!ClauseMatches(item_bits, clauses + c * num_words, num_words)) return false;
  }
  return true;
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_EVAL_H_
