// Lowering of parsed filters to clause bitsets (conjunctive normal form over
// the attribute bit vocabulary). No TensorFlow dependency.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_COMPILER_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_COMPILER_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "custom_ops/filter/filter_language.h"

namespace linr {
namespace filter {

// Maps attribute values to bit positions. Built from keys "attr=value"
// (attribute = text before the first '='); keys starting with "__" are
// reserved (e.g. "__live__"), need no '=' and cannot be named in filters.
class BitKeyIndex {
 public:
  // Returns false and sets `error` for malformed or duplicate keys.
  bool Build(const std::vector<std::string>& keys, std::string* error);

  int64_t num_bits() const { return num_bits_; }
  // Number of 32-bit words per bitset: max(1, ceil(num_bits / 32)).
  int64_t num_words() const { return num_bits_ == 0 ? 1 : (num_bits_ + 31) / 32; }

  // Bit of attribute=value, -1 if the value is unknown, -2 if the attribute is.
  int64_t Lookup(const std::string& attribute, const std::string& value) const;
  bool HasAttribute(const std::string& attribute) const;
  // "a, b, c" (sorted; shortened when long), for error messages.
  std::string KnownAttributes() const;

 private:
  int64_t num_bits_ = 0;
  std::unordered_map<std::string, std::unordered_map<std::string, int64_t>> bits_;
};

enum class UnknownValuePolicy { kError, kMatchNone };

// One clause: num_words() words; an item passes if it shares a bit with it.
using ClauseBits = std::vector<uint32_t>;

// True for attribute names that filters may not use.
bool IsReservedName(const std::string& name);

// Lowers `root` to clauses. Returns false and sets `error` (e.g. "unknown
// attribute 'x' at position 0 (known: a, b)") on failure.
bool CompileFilter(const FilterNode& root, const BitKeyIndex& index,
                   UnknownValuePolicy unknown_value, std::vector<ClauseBits>* clauses,
                   std::string* error);

}  // namespace filter
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_COMPILER_H_
