// Compiled attribute filters: a postfix program over an item's attribute bitset.
//
// This header is the contract between the filter compiler (LinrCompileFilter)
// and every kernel that evaluates filters (CPU and CUDA). Usable from host and
// device code.
//
// Tensor layout: `program` is int32 [B, L, kProgramHeaderWords + W], one program
// of L instructions per query; instruction row = {opcode, reserved(0), mask[W]}.
// Rows are executed in order; kNop rows are skipped, so programs are padded
// with kNop and a suffix can be appended to a padded program (this is how the
// index appends "AND live").
//
// Opcodes (a stack of booleans, at most kMaxProgramStack deep):
//   kAny  push (bits & mask) != 0     (one of the values; `attr = v`, `IN`)
//   kAll  push (bits & mask) == mask  (all of the values; `ALL (...)`)
//   kAnd  pop b, pop a, push a && b
//   kOr   pop b, pop a, push a || b
//   kNot  pop a, push !a
//   kTrue / kFalse  push a constant (empty filter = kTrue; an unknown value in
//                   match-none mode = kFalse)
//   kNumberRange, kValueAny, kValueAll, kIdIn  column leaves: push a verdict
//                   computed from the item's exact numbers, value ids or slot
//                   (filter_columns.h); header word 1 is the index of the
//                   leaf's operand record, the mask words are unused.
// A valid program leaves exactly one value on the stack: the verdict.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_PROGRAM_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_PROGRAM_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace linr {

enum FilterOpcode : int32_t {
  kNop = 0,
  kAny = 1,
  kAll = 2,
  kAnd = 3,
  kOr = 4,
  kNot = 5,
  kTrue = 6,
  kFalse = 7,
  kNumberRange = 8,  // lo <= numbers[item, column] <= hi (int64 or float64)
  kValueAny = 9,     // the item holds one of the listed value ids
  kValueAll = 10,    // the item holds every listed value id
  kIdIn = 11,        // the item's slot is in the listed slots
};

LINR_HOST_DEVICE LINR_FORCE_INLINE bool IsColumnLeaf(int32_t opcode) {
  return opcode >= kNumberRange && opcode <= kIdIn;
}

constexpr int kProgramHeaderWords = 2;
constexpr int kMaxProgramStack = 64;

// Checks opcodes and stack discipline of one program (host side, once per
// query before a scan). Returns nullptr when valid, else a static message.
inline const char* ValidateProgram(const int32_t* program, int64_t length,
                                   int64_t num_words) {
  const int64_t row = kProgramHeaderWords + num_words;
  int depth = 0;
  for (int64_t i = 0; i < length; ++i) {
    switch (program[i * row]) {
      case kNop:
        break;
      case kAny:
      case kAll:
      case kTrue:
      case kFalse:
      case kNumberRange:
      case kValueAny:
      case kValueAll:
      case kIdIn:
        if (++depth > kMaxProgramStack) return "filter program stack overflow (nesting too deep)";
        break;
      case kAnd:
      case kOr:
        if (depth < 2) return "filter program stack underflow";
        --depth;
        break;
      case kNot:
        if (depth < 1) return "filter program stack underflow";
        break;
      default:
        return "filter program has an unknown opcode";
    }
  }
  if (depth != 1) return "filter program must leave exactly one value";
  return nullptr;
}

// A program without column leaves needs no column evaluator.
struct NoColumns {
  LINR_HOST_DEVICE bool operator()(const int32_t* /*instruction*/) const { return false; }
};

// Evaluates a validated program against one item's bitset (W words); column
// leaves are answered by `columns(instruction)` (filter_columns.h).
template <typename Columns>
LINR_HOST_DEVICE LINR_FORCE_INLINE bool EvalProgramWith(const int32_t* program, int64_t length,
                                                        int64_t num_words,
                                                        const int32_t* item_bits,
                                                        const Columns& columns) {
  const int64_t row = kProgramHeaderWords + num_words;
  uint64_t stack = 0;  // bit 0 = top of stack
  for (int64_t i = 0; i < length; ++i) {
    const int32_t* ins = program + i * row;
    const int32_t* mask = ins + kProgramHeaderWords;
    switch (ins[0]) {
      case kAny: {
        int32_t any = 0;
        for (int64_t w = 0; w < num_words; ++w) any |= item_bits[w] & mask[w];
        stack = (stack << 1) | (any != 0);
        break;
      }
      case kAll: {
        int32_t missing = 0;
        for (int64_t w = 0; w < num_words; ++w) missing |= mask[w] & ~item_bits[w];
        stack = (stack << 1) | (missing == 0);
        break;
      }
      case kAnd: {
        const uint64_t b = stack & 1;
        stack >>= 1;
        stack = (stack & ~uint64_t{1}) | (stack & b);
        break;
      }
      case kOr: {
        const uint64_t b = stack & 1;
        stack >>= 1;
        stack |= b;
        break;
      }
      case kNot:
        stack ^= 1;
        break;
      case kTrue:
        stack = (stack << 1) | 1;
        break;
      case kFalse:
        stack <<= 1;
        break;
      case kNumberRange:
      case kValueAny:
      case kValueAll:
      case kIdIn:
        stack = (stack << 1) | (columns(ins) ? 1 : 0);
        break;
      default:  // kNop
        break;
    }
  }
  return (stack & 1) != 0;
}

// Evaluates a validated program without column leaves against one item's bitset.
LINR_HOST_DEVICE LINR_FORCE_INLINE bool EvalProgram(const int32_t* program, int64_t length,
                                                    int64_t num_words,
                                                    const int32_t* item_bits) {
  return EvalProgramWith(program, length, num_words, item_bits, NoColumns());
}

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_PROGRAM_H_
