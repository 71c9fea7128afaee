// Lowering of parsed filters to postfix programs (custom_ops/filter/
// filter_program.h) over the attribute bit vocabulary. No TensorFlow dependency.
//
// Bit keys (one per bit of the item attribute bitset):
//   "attr=value"     categorical value (multi-valued attributes simply set
//                    several bits of the attribute)
//   "attr@[lo,hi)"   numeric bucket lo <= x < hi; lo or hi empty = open end,
//                    e.g. "age_hours@[,1)", "age_hours@[24,72)", "age_hours@[720,)".
//                    The buckets of one attribute must tile the number line:
//                    first "[,", last ",)", each hi equal to the next lo.
//                    lo/hi are decimal numbers ("-1.5", "24", "1e-05").
//   "__name..."      reserved (e.g. "__live__"); never addressable in filters.
// Attribute names may not contain '=' or '@'.
//
// Lowering: `attr = v` -> kAny{v}; `IN` -> one kAny of the OR'd bits; `ALL` ->
// kAll; `!=` / `NOT IN` -> ... kNot; `attr < x` -> kAny of the buckets with
// hi <= x; `attr >= x` -> kAny of the buckets with lo >= x (x must be a bucket
// boundary; `<=` and `>` are rejected as inexact on [lo, hi) buckets). The
// program is simplified (constants folded, double NOT removed, OR of kAny and
// AND of kAll merged into one instruction) and children are ordered to keep
// the evaluation stack shallow.
//
// Column attributes (ColumnSchema, LinrCompileFilterColumns) lower to column
// leaves (filter_columns.h): exact numbers to kNumberRange (`<`, `<=`, `>`,
// `>=`, `=`, `!=`, `BETWEEN a AND b` at any threshold; int64 columns compare
// exactly, also past 2^53), value-id attributes to kValueAny / kValueAll
// (`=`, `!=`, `IN`, `NOT IN`, `ALL`; values are looked up by the caller, and
// one the index does not know matches nothing, never an error), and the id
// attribute (`item_id IN (...)`, `NOT IN`, `=`, `!=`; at most
// kMaxIdsPerQuery ids per query) to kIdIn.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_COMPILER_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_COMPILER_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "custom_ops/filter/filter_language.h"

namespace linr {
namespace filter {

// One bucket [lo, hi) of a numeric attribute; open ends are -inf / +inf.
struct NumericBucket {
  double lo;
  double hi;
  std::string lo_text;  // as written in the key ("" = open)
  std::string hi_text;
  int64_t bit;
};

struct AttributeBits {
  bool numeric = false;
  std::unordered_map<std::string, int64_t> values;  // categorical: value -> bit
  std::vector<NumericBucket> buckets;               // numeric: sorted by lo
};

// Maps attribute values and numeric buckets to bit positions.
class BitKeyIndex {
 public:
  // Returns false and sets `error` for malformed or duplicate keys.
  bool Build(const std::vector<std::string>& keys, std::string* error);

  int64_t num_bits() const { return num_bits_; }
  // Number of 32-bit words per bitset: max(1, ceil(num_bits / 32)).
  int64_t num_words() const { return num_bits_ == 0 ? 1 : (num_bits_ + 31) / 32; }

  // nullptr when the attribute has no keys.
  const AttributeBits* Find(const std::string& attribute) const;
  // "a, b, c" (sorted; shortened when long), for error messages.
  std::string KnownAttributes() const;

 private:
  int64_t num_bits_ = 0;
  std::map<std::string, AttributeBits> attributes_;
};

// The attributes held in column stores (filter_columns.h).
class ColumnSchema {
 public:
  // number_specs: "name:int64" / "name:float64", column i = spec i;
  // value_specs: "name:width", consecutive column ranges of value_ids;
  // id_attribute: the name of per-request id sets ("" = none).
  bool Build(const std::vector<std::string>& number_specs,
             const std::vector<std::string>& value_specs, const std::string& id_attribute,
             std::string* error);
  struct Number { int64_t column; bool is_float; };
  struct Values { int64_t begin, end; };
  const Number* FindNumber(const std::string& name) const;
  const Values* FindValues(const std::string& name) const;
  const std::string& id_attribute() const { return id_attribute_; }
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, Number> numbers_;
  std::map<std::string, Values> values_;
  std::string id_attribute_;
};

// What column leaves refer to, per query: operand records and the strings
// the caller resolves (values "attr=value" to value ids, item ids to slots).
struct ColumnOperands {
  std::vector<std::array<int64_t, 4>> records;
  std::vector<std::string> value_lookups;
  std::vector<std::string> id_lookups;
};

enum class UnknownValuePolicy { kError, kMatchNone };

// One program row: opcode (FilterOpcode), num_words() mask words and, for
// column leaves, the operand record index (header word 1).
struct Instruction {
  int32_t opcode;
  std::vector<uint32_t> mask;
  int32_t operand = 0;
};
using Program = std::vector<Instruction>;

// True for attribute names that filters may not use.
bool IsReservedName(const std::string& name);

// Parses a decimal number ("-1.5", "24", "1e-05"; no inf/nan/hex).
bool ParseNumber(const std::string& text, double* value);

// Lowers `root` to a program that leaves one value on the stack (an empty
// filter gives a single kTrue). Returns false and sets `error` (e.g. "unknown
// attribute 'x' at position 0 (known: a, b)") on failure.
bool CompileFilter(const FilterNode& root, const BitKeyIndex& index,
                   UnknownValuePolicy unknown_value, Program* program, std::string* error);

// The same with column attributes: column leaves append to `operands`.
bool CompileFilter(const FilterNode& root, const BitKeyIndex& index,
                   const ColumnSchema& columns, UnknownValuePolicy unknown_value,
                   Program* program, ColumnOperands* operands, std::string* error);

}  // namespace filter
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_COMPILER_H_
