// Bit-sliced evaluation of filter programs (filter_program.h) over 64 items
// at a time, for the CPU kernel of LinrFilterMask. No TensorFlow dependency.
//
// Items are given as columns: word w of item j of the block is
// cols[w * col_stride + j]. Each leaf instruction (kAny / kAll) yields a
// 64-bit word (bit j = verdict for item j); the boolean stack holds such words,
// so kAnd / kOr / kNot / kTrue / kFalse are single word operations. The verdict
// of every item equals EvalProgram's. Column leaves (filter_columns.h) get a
// block's 64 verdicts from ColumnBlock.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_MASK_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_MASK_H_

#include <cstdint>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LINR_FILTER_X86 1
#else
#define LINR_FILTER_X86 0
#endif

#include "custom_ops/filter/filter_columns.h"
#include "custom_ops/filter/filter_program.h"

namespace linr {
namespace filter_mask {

constexpr int kBlock = 64;  // items per bit-sliced evaluation

// A program without its kNop rows.
struct Instruction {
  int32_t opcode;
  const int32_t* mask;  // W words (leaves only)
  const int32_t* row;   // the whole instruction row (column leaves: operand index)
};

inline std::vector<Instruction> StripProgram(const int32_t* program, int64_t length,
                                             int64_t num_words) {
  std::vector<Instruction> out;
  const int64_t row = kProgramHeaderWords + num_words;
  for (int64_t i = 0; i < length; ++i) {
    const int32_t* ins = program + i * row;
    if (ins[0] != kNop) out.push_back(Instruction{ins[0], ins + kProgramHeaderWords, ins});
  }
  return out;
}

// Leaf verdicts of 64 items, portable.
struct PortableLeaves {
  static uint64_t Any(const int32_t* cols, int64_t stride, int64_t num_words, const int32_t* m) {
    uint64_t out = 0;
    for (int j = 0; j < kBlock; ++j) {
      int32_t acc = 0;
      for (int64_t w = 0; w < num_words; ++w) acc |= cols[w * stride + j] & m[w];
      out |= static_cast<uint64_t>(acc != 0) << j;
    }
    return out;
  }
  static uint64_t All(const int32_t* cols, int64_t stride, int64_t num_words, const int32_t* m) {
    uint64_t out = 0;
    for (int j = 0; j < kBlock; ++j) {
      int32_t missing = 0;
      for (int64_t w = 0; w < num_words; ++w) missing |= m[w] & ~cols[w * stride + j];
      out |= static_cast<uint64_t>(missing == 0) << j;
    }
    return out;
  }
};

#if LINR_FILTER_X86
#define LINR_FILTER_AVX2 __attribute__((target("avx2")))
// Leaf verdicts of 64 items, 8 items per AVX2 register.
struct Avx2Leaves {
  LINR_FILTER_AVX2 static uint64_t Any(const int32_t* cols, int64_t stride, int64_t num_words,
                                       const int32_t* m) {
    uint64_t out = 0;
    const __m256i zero = _mm256_setzero_si256();
    for (int blk = 0; blk < kBlock / 8; ++blk) {
      __m256i acc = zero;
      for (int64_t w = 0; w < num_words; ++w) {
        const __m256i x =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cols + w * stride + 8 * blk));
        acc = _mm256_or_si256(acc, _mm256_and_si256(x, _mm256_set1_epi32(m[w])));
      }
      const uint32_t is_zero = static_cast<uint32_t>(
          _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(acc, zero))));
      out |= static_cast<uint64_t>(~is_zero & 0xFFu) << (8 * blk);
    }
    return out;
  }
  LINR_FILTER_AVX2 static uint64_t All(const int32_t* cols, int64_t stride, int64_t num_words,
                                       const int32_t* m) {
    uint64_t out = 0;
    const __m256i zero = _mm256_setzero_si256();
    for (int blk = 0; blk < kBlock / 8; ++blk) {
      __m256i missing = zero;
      for (int64_t w = 0; w < num_words; ++w) {
        const __m256i x =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cols + w * stride + 8 * blk));
        missing = _mm256_or_si256(missing, _mm256_andnot_si256(x, _mm256_set1_epi32(m[w])));
      }
      const uint32_t ok = static_cast<uint32_t>(
          _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(missing, zero))));
      out |= static_cast<uint64_t>(ok) << (8 * blk);
    }
    return out;
  }
};

#define LINR_FILTER_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2")))
// Leaf verdicts of 64 items, 16 items per 512-bit register; vptestmd /
// vptestnmd give the 16 verdict bits directly (same verdicts as Avx2Leaves).
struct Avx512Leaves {
  LINR_FILTER_AVX512 static uint64_t Any(const int32_t* cols, int64_t stride, int64_t num_words,
                                         const int32_t* m) {
    uint64_t out = 0;
    for (int blk = 0; blk < kBlock / 16; ++blk) {
      __m512i acc = _mm512_setzero_si512();
      for (int64_t w = 0; w < num_words; ++w) {
        const __m512i x = _mm512_loadu_si512(cols + w * stride + 16 * blk);
        acc = _mm512_or_si512(acc, _mm512_and_si512(x, _mm512_set1_epi32(m[w])));
      }
      out |= static_cast<uint64_t>(_mm512_test_epi32_mask(acc, acc)) << (16 * blk);
    }
    return out;
  }
  LINR_FILTER_AVX512 static uint64_t All(const int32_t* cols, int64_t stride, int64_t num_words,
                                         const int32_t* m) {
    uint64_t out = 0;
    for (int blk = 0; blk < kBlock / 16; ++blk) {
      __m512i missing = _mm512_setzero_si512();
      for (int64_t w = 0; w < num_words; ++w) {
        const __m512i x = _mm512_loadu_si512(cols + w * stride + 16 * blk);
        missing = _mm512_or_si512(missing, _mm512_andnot_si512(x, _mm512_set1_epi32(m[w])));
      }
      out |= static_cast<uint64_t>(_mm512_testn_epi32_mask(missing, missing)) << (16 * blk);
    }
    return out;
  }
};
#endif

// Verdicts of column leaves for the 64 items [first, first + 64) (items past
// num_items get 0). Only the items of `care` are evaluated (the others may
// get any verdict): a leaf followed by kAnd matters only where the stack top
// holds, one followed by kOr only where it does not.
// Verdict words of column leaves that several queries of a batch share (same
// opcode, operands and list), computed once per 64-item block of a chunk.
struct SharedLeaves {
  const int32_t* shared_of;  // per operand of this query: shared leaf index or -1
  uint64_t* words;           // [num_shared][blocks]
  uint8_t* valid;            // [num_shared][blocks]
  int64_t blocks;
  int64_t block;             // the current block of the chunk
};

struct ColumnBlock {
  const ColumnLeaf* leaf;  // nullptr: the program has no column leaves
  int64_t num_items;
  int64_t first;
  const SharedLeaves* shared = nullptr;

  uint64_t operator()(const int32_t* ins, uint64_t care) const {
    if (shared != nullptr) {
      const int32_t id = shared->shared_of[ins[1]];
      if (id >= 0) {
        const int64_t at = id * shared->blocks + shared->block;
        if (!shared->valid[at]) {
          shared->words[at] = Eval(ins, ~uint64_t{0});
          shared->valid[at] = 1;
        }
        return shared->words[at];
      }
    }
    return Eval(ins, care);
  }

  uint64_t Eval(const int32_t* ins, uint64_t care) const {
    const int64_t n = num_items - first < kBlock ? num_items - first : kBlock;
    if (n < kBlock) care &= (uint64_t{1} << n) - 1;
    if (care == 0) return 0;
    const int64_t* r = leaf->operands + static_cast<int64_t>(ins[1]) * kOperandWords;
    uint64_t out = 0;
    switch (ins[0]) {
      case kIdIn: {
        // Sorted slots: find the block's first, then walk (no search per item).
        const int32_t* list = leaf->pool + r[2];
        const int64_t count = r[3] - r[2];
        int64_t lo = 0, hi = count;
        while (lo < hi) {
          const int64_t mid = (lo + hi) >> 1;
          if (list[mid] < first) lo = mid + 1; else hi = mid;
        }
        for (; lo < count && list[lo] < first + n; ++lo) out |= uint64_t{1} << (list[lo] - first);
        return out;
      }
      case kNumberRange: {
        const int64_t a = leaf->num_numbers;
        const int64_t* x = leaf->numbers + first * a + r[0];
        const int64_t lo = r[1], hi = r[2];
        if (r[3] == 0) {
          for (int64_t j = 0; j < n; ++j) {
            const int64_t v = x[j * a];
            out |= static_cast<uint64_t>(lo <= v && v <= hi) << j;
          }
        } else {
          for (int64_t j = 0; j < n; ++j) {
            const int64_t v = OrderedFloatKey(x[j * a]);
            out |= static_cast<uint64_t>(lo <= v && v <= hi) << j;
          }
        }
        return out;
      }
      case kValueAny:
      case kValueAll: {
        if (r[2] < 0) return 0;
        const bool all = ins[0] == kValueAll;
        const int32_t* list = leaf->pool + r[2];
        const int64_t count = r[3] - r[2];
        const int64_t width = leaf->value_width, begin = r[0], end = r[1];
        const int32_t* rows = leaf->value_ids + first * width;
        for (uint64_t m = care; m != 0; m &= m - 1) {
          const int j = __builtin_ctzll(m);
          const int32_t* cells = rows + j * width;
          int64_t found = 0;
          for (int64_t c = begin; c < end; ++c) {
            const int32_t v = cells[c];
            if (v < 0) break;
            bool hit;
            if (count <= 8) {
              hit = false;
              for (int64_t k = 0; k < count; ++k) hit |= list[k] == v;
            } else {
              hit = SortedContains(list, count, v);
            }
            found += hit;
            if (hit && !all) break;
          }
          const bool pass = all ? found == count : found > 0;
          out |= static_cast<uint64_t>(pass) << j;
        }
        return out;
      }
      default:
        return 0;
    }
  }
};

// Verdicts of 64 items (bit j = item j) for a validated, stripped program.
template <typename Leaves>
inline uint64_t EvalBlock(const Instruction* program, int64_t length, const int32_t* cols,
                          int64_t stride, int64_t num_words,
                          const ColumnBlock& columns = ColumnBlock{nullptr, 0, 0}) {
  uint64_t stack[kMaxProgramStack + 1];
  int top = -1;
  for (int64_t i = 0; i < length; ++i) {
    const Instruction& ins = program[i];
    switch (ins.opcode) {
      case kAny:
        stack[++top] = Leaves::Any(cols, stride, num_words, ins.mask);
        break;
      case kAll:
        stack[++top] = Leaves::All(cols, stride, num_words, ins.mask);
        break;
      case kAnd:
        stack[top - 1] &= stack[top];
        --top;
        break;
      case kOr:
        stack[top - 1] |= stack[top];
        --top;
        break;
      case kNot:
        stack[top] = ~stack[top];
        break;
      case kTrue:
        stack[++top] = ~uint64_t{0};
        break;
      case kFalse:
        stack[++top] = 0;
        break;
      case kNumberRange:
      case kValueAny:
      case kValueAll:
      case kIdIn: {
        uint64_t care = ~uint64_t{0};
        if (top >= 0 && i + 1 < length) {
          if (program[i + 1].opcode == kAnd) care = stack[top];
          if (program[i + 1].opcode == kOr) care = ~stack[top];
        }
        stack[top + 1] = columns.leaf != nullptr ? columns(ins.row, care) : 0;
        ++top;
        break;
      }
      default:
        break;
    }
  }
  return top >= 0 ? stack[top] : 0;
}

}  // namespace filter_mask
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_MASK_H_
