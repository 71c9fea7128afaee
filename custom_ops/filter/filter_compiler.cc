#include "custom_ops/filter/filter_compiler.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "custom_ops/filter/filter_program.h"

namespace linr {
namespace filter {

static_assert(kMaxNestingDepth == kMaxProgramStack,
              "parser nesting limit must match the program stack");

namespace {

constexpr int kMaxListed = 32;
constexpr double kInf = std::numeric_limits<double>::infinity();

using Mask = std::vector<uint32_t>;

std::string JoinShortened(std::vector<std::string> names, bool sort) {
  if (sort) std::sort(names.begin(), names.end());
  if (names.empty()) return "none";
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxListed; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > kMaxListed) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// ------------------------------------------------------------ boolean IR
// The AST is lowered to this tree, simplified, then emitted in postfix order.
struct Expr {
  enum class Kind { kAny, kAll, kConst, kNot, kAnd, kOr };
  Kind kind = Kind::kConst;
  bool value = true;        // kConst
  Mask mask;                // kAny, kAll
  std::vector<Expr> children;  // kNot (1), kAnd / kOr (>= 2)
};

bool IsZero(const Mask& mask) {
  for (uint32_t w : mask) if (w != 0) return false;
  return true;
}

int PopCount(const Mask& mask) {
  int n = 0;
  for (uint32_t w : mask) n += __builtin_popcount(w);
  return n;
}

void OrInto(Mask* into, const Mask& mask) {
  for (size_t w = 0; w < into->size(); ++w) (*into)[w] |= mask[w];
}

Expr Const(bool value) {
  Expr e;
  e.kind = Expr::Kind::kConst;
  e.value = value;
  return e;
}

// kAny of an empty mask never holds; kAll of an empty mask always does.
Expr Leaf(Expr::Kind kind, Mask mask) {
  if (IsZero(mask)) return Const(kind == Expr::Kind::kAll);
  Expr e;
  e.kind = kind;
  e.mask = std::move(mask);
  return e;
}

Expr Not(Expr child) {
  if (child.kind == Expr::Kind::kConst) return Const(!child.value);
  if (child.kind == Expr::Kind::kNot) return std::move(child.children[0]);
  Expr e;
  e.kind = Expr::Kind::kNot;
  e.children.push_back(std::move(child));
  return e;
}

// AND (is_and) or OR of `children`: flattens, folds constants and merges
// leaves (AND of kAll = kAll of the union; OR of kAny = kAny of the union; a
// one-bit leaf is both kinds).
Expr Junction(bool is_and, std::vector<Expr> children) {
  const Expr::Kind self = is_and ? Expr::Kind::kAnd : Expr::Kind::kOr;
  const Expr::Kind mergeable = is_and ? Expr::Kind::kAll : Expr::Kind::kAny;
  std::vector<Expr> flat;
  for (Expr& child : children) {
    if (child.kind == self) {
      for (Expr& grandchild : child.children) flat.push_back(std::move(grandchild));
    } else {
      flat.push_back(std::move(child));
    }
  }
  std::vector<Expr> kept;
  int merged_at = -1;
  for (Expr& child : flat) {
    if (child.kind == Expr::Kind::kConst) {
      if (child.value != is_and) return Const(!is_and);  // AND false / OR true
      continue;                                          // neutral element
    }
    const bool is_leaf = child.kind == Expr::Kind::kAny || child.kind == Expr::Kind::kAll;
    if (is_leaf && (child.kind == mergeable || PopCount(child.mask) == 1)) {
      if (merged_at < 0) {
        merged_at = static_cast<int>(kept.size());
        child.kind = mergeable;
        kept.push_back(std::move(child));
      } else {
        OrInto(&kept[merged_at].mask, child.mask);
      }
      continue;
    }
    kept.push_back(std::move(child));
  }
  if (kept.empty()) return Const(is_and);
  if (kept.size() == 1) return std::move(kept[0]);
  Expr e;
  e.kind = self;
  e.children = std::move(kept);
  return e;
}

// Stack depth needed to evaluate `e` (children in the order they are emitted).
int StackNeed(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kNot:
      return StackNeed(e.children[0]);
    case Expr::Kind::kAnd:
    case Expr::Kind::kOr: {
      int need = 0;
      for (size_t i = 0; i < e.children.size(); ++i) {
        need = std::max<int>(need, StackNeed(e.children[i]) + static_cast<int>(i > 0));
      }
      return need;
    }
    default:
      return 1;
  }
}

// Puts the children needing the deepest stack first (AND / OR commute), which
// keeps the stack need at most one above the deepest child's.
void OrderForStack(Expr* e) {
  for (Expr& child : e->children) OrderForStack(&child);
  if (e->kind != Expr::Kind::kAnd && e->kind != Expr::Kind::kOr) return;
  std::vector<std::pair<int, size_t>> order;
  for (size_t i = 0; i < e->children.size(); ++i) order.push_back({-StackNeed(e->children[i]), i});
  std::stable_sort(order.begin(), order.end());
  std::vector<Expr> sorted;
  for (const auto& entry : order) sorted.push_back(std::move(e->children[entry.second]));
  e->children = std::move(sorted);
}

void Emit(const Expr& e, int64_t num_words, Program* program) {
  switch (e.kind) {
    case Expr::Kind::kConst:
      program->push_back({e.value ? kTrue : kFalse, Mask(num_words, 0u)});
      return;
    case Expr::Kind::kAny:
    case Expr::Kind::kAll: {
      const bool any = e.kind == Expr::Kind::kAny || PopCount(e.mask) == 1;
      program->push_back({any ? kAny : kAll, e.mask});
      return;
    }
    case Expr::Kind::kNot:
      Emit(e.children[0], num_words, program);
      program->push_back({kNot, Mask(num_words, 0u)});
      return;
    case Expr::Kind::kAnd:
    case Expr::Kind::kOr: {
      const int32_t op = e.kind == Expr::Kind::kAnd ? kAnd : kOr;
      Emit(e.children[0], num_words, program);
      for (size_t i = 1; i < e.children.size(); ++i) {
        Emit(e.children[i], num_words, program);
        program->push_back({op, Mask(num_words, 0u)});
      }
      return;
    }
  }
}

// ------------------------------------------------------------ lowering
class Lowering {
 public:
  Lowering(const BitKeyIndex& index, UnknownValuePolicy unknown_value, std::string* error)
      : index_(index), unknown_value_(unknown_value), error_(error) {}

  bool Lower(const FilterNode& node, Expr* out) {
    switch (node.kind) {
      case FilterNode::Kind::kTrue:
        *out = Const(true);
        return true;
      case FilterNode::Kind::kNot: {
        Expr child;
        if (!Lower(node.children[0], &child)) return false;
        *out = Not(std::move(child));
        return true;
      }
      case FilterNode::Kind::kAnd:
      case FilterNode::Kind::kOr: {
        std::vector<Expr> children(node.children.size());
        for (size_t i = 0; i < node.children.size(); ++i) {
          if (!Lower(node.children[i], &children[i])) return false;
        }
        *out = Junction(node.kind == FilterNode::Kind::kAnd, std::move(children));
        return true;
      }
      case FilterNode::Kind::kPredicate:
        return LowerPredicate(node, out);
    }
    return Fail("internal error: unsupported filter node");
  }

 private:
  bool Fail(const std::string& message) {
    *error_ = message;
    return false;
  }

  Mask EmptyMask() const { return Mask(index_.num_words(), 0u); }
  static void SetBit(Mask* mask, int64_t bit) { (*mask)[bit / 32] |= 1u << (bit % 32); }

  static std::string PredicateText(const FilterNode& node) {
    return node.attribute + " " + node.operator_text + " " + node.values[0].raw;
  }

  static std::string Boundaries(const AttributeBits& attr) {
    std::vector<std::string> bounds;
    for (size_t i = 1; i < attr.buckets.size(); ++i) bounds.push_back(attr.buckets[i].lo_text);
    return "boundaries: " + JoinShortened(bounds, /*sort=*/false);
  }

  bool TypeMismatch(const FilterNode& node, const std::string& detail) {
    return Fail("type mismatch at position " + std::to_string(node.operator_position) +
                " near " + Quote(node.operator_text) + ": " + detail);
  }

  bool LowerPredicate(const FilterNode& node, Expr* out) {
    if (IsReservedName(node.attribute)) {
      return Fail("reserved attribute " + Quote(node.attribute) + " at position " +
                  std::to_string(node.attribute_position) + " cannot be used in a filter");
    }
    const AttributeBits* attr = index_.Find(node.attribute);
    if (attr == nullptr) {
      return Fail("unknown attribute " + Quote(node.attribute) + " at position " +
                  std::to_string(node.attribute_position) + " (known: " +
                  index_.KnownAttributes() + ")");
    }
    const bool range = IsRangeComparison(node.comparison);
    if (attr->numeric && !range) {
      return TypeMismatch(node, "attribute " + Quote(node.attribute) +
                                    " is numeric (bucketed); compare it with < or >= and a "
                                    "bucket boundary (" + Boundaries(*attr) + ")");
    }
    if (!attr->numeric && range) {
      return TypeMismatch(node, "attribute " + Quote(node.attribute) + " is categorical; " +
                                    Quote(node.operator_text) +
                                    " needs a numeric attribute (use =, !=, IN, NOT IN or ALL)");
    }
    return range ? LowerRange(node, *attr, out) : LowerCategorical(node, *attr, out);
  }

  // Mask of the listed values; `all_known` tells whether every value is in
  // the vocabulary (unknown ones are an error unless the policy is match-none).
  bool ValueMask(const FilterNode& node, const AttributeBits& attr, Mask* mask,
                 bool* all_known) {
    *mask = EmptyMask();
    *all_known = true;
    for (const ValueRef& value : node.values) {
      auto it = attr.values.find(value.text);
      if (it != attr.values.end()) {
        SetBit(mask, it->second);
        continue;
      }
      if (unknown_value_ == UnknownValuePolicy::kError) {
        std::vector<std::string> known;
        for (const auto& entry : attr.values) known.push_back(entry.first);
        return Fail("unknown value " + Quote(value.text) + " for attribute " +
                    Quote(node.attribute) + " at position " + std::to_string(value.position) +
                    " (known: " + JoinShortened(known, /*sort=*/true) + ")");
      }
      *all_known = false;
    }
    return true;
  }

  bool LowerCategorical(const FilterNode& node, const AttributeBits& attr, Expr* out) {
    Mask mask;
    bool all_known;
    if (!ValueMask(node, attr, &mask, &all_known)) return false;
    switch (node.comparison) {
      case Comparison::kEq:
      case Comparison::kIn:
        *out = Leaf(Expr::Kind::kAny, std::move(mask));
        return true;
      case Comparison::kNe:
      case Comparison::kNotIn:
        *out = Not(Leaf(Expr::Kind::kAny, std::move(mask)));
        return true;
      case Comparison::kAll:
        // No item holds a value outside the vocabulary.
        *out = all_known ? Leaf(Expr::Kind::kAll, std::move(mask)) : Const(false);
        return true;
      default:
        return Fail("internal error: unexpected comparison");
    }
  }

  bool LowerRange(const FilterNode& node, const AttributeBits& attr, Expr* out) {
    const ValueRef& value = node.values[0];
    double threshold;
    if (!ParseNumber(value.text, &threshold)) {
      return Fail(PredicateText(node) + " at position " + std::to_string(value.position) +
                  ": " + Quote(value.raw) + " is not a number (attribute " +
                  Quote(node.attribute) + " is numeric)");
    }
    bool is_boundary = false;
    for (size_t i = 1; i < attr.buckets.size(); ++i) is_boundary |= attr.buckets[i].lo == threshold;
    if (node.comparison == Comparison::kLessEq || node.comparison == Comparison::kGreater) {
      const bool less = node.comparison == Comparison::kLessEq;
      std::string advice = "use " + Quote(less ? "<" : ">=") + " with a bucket boundary";
      if (is_boundary) {
        advice = "use " + Quote(node.attribute + (less ? " < " : " >= ") + value.raw) +
                 " (or another bucket boundary)";
      }
      return Fail(PredicateText(node) + " at position " +
                  std::to_string(node.operator_position) + ": " + Quote(node.operator_text) +
                  " is not exact on the [lo, hi) buckets of numeric attribute " +
                  Quote(node.attribute) + "; " + advice + " (" + Boundaries(attr) + ")");
    }
    if (!is_boundary) {
      return Fail(PredicateText(node) + " at position " + std::to_string(value.position) + ": " +
                  value.raw + " is not a bucket boundary of " + Quote(node.attribute) + " (" +
                  Boundaries(attr) + ")");
    }
    Mask mask = EmptyMask();
    for (const NumericBucket& bucket : attr.buckets) {
      const bool inside = node.comparison == Comparison::kLess ? bucket.hi <= threshold
                                                                : bucket.lo >= threshold;
      if (inside) SetBit(&mask, bucket.bit);
    }
    *out = Leaf(Expr::Kind::kAny, std::move(mask));
    return true;
  }

  const BitKeyIndex& index_;
  UnknownValuePolicy unknown_value_;
  std::string* error_;
};

// Parses "[lo,hi)" (either bound may be empty) into a bucket.
bool ParseBucket(const std::string& spec, NumericBucket* bucket) {
  if (spec.size() < 3 || spec.front() != '[' || spec.back() != ')') return false;
  const std::string body = spec.substr(1, spec.size() - 2);
  const size_t comma = body.find(',');
  if (comma == std::string::npos) return false;
  bucket->lo_text = body.substr(0, comma);
  bucket->hi_text = body.substr(comma + 1);
  bucket->lo = -kInf;
  bucket->hi = kInf;
  if (!bucket->lo_text.empty() && !ParseNumber(bucket->lo_text, &bucket->lo)) return false;
  if (!bucket->hi_text.empty() && !ParseNumber(bucket->hi_text, &bucket->hi)) return false;
  return true;
}

std::string BucketText(const NumericBucket& b) { return "[" + b.lo_text + "," + b.hi_text + ")"; }

}  // namespace

bool IsReservedName(const std::string& name) {
  return name.size() >= 2 && name[0] == '_' && name[1] == '_';
}

bool ParseNumber(const std::string& text, double* value) {
  // -?(digits[.digits] | .digits)([eE][+-]?digits)?
  size_t i = 0;
  const size_t n = text.size();
  if (i < n && text[i] == '-') ++i;
  size_t digits = 0;
  while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++digits;
  if (i < n && text[i] == '.') {
    ++i;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    size_t exponent_digits = 0;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++exponent_digits;
    if (exponent_digits == 0) return false;
  }
  if (i != n) return false;
  // std::from_chars is locale-independent (unlike strtod).
  const auto result = std::from_chars(text.data(), text.data() + n, *value);
  return result.ec == std::errc() && result.ptr == text.data() + n && std::isfinite(*value);
}

bool BitKeyIndex::Build(const std::vector<std::string>& keys, std::string* error) {
  attributes_.clear();
  num_bits_ = static_cast<int64_t>(keys.size());
  for (int64_t i = 0; i < num_bits_; ++i) {
    const std::string& key = keys[i];
    if (IsReservedName(key)) continue;  // e.g. "__live__": never addressable
    const std::string where = "bit_keys[" + std::to_string(i) + "] = " + Quote(key);
    const size_t eq = key.find('=');
    const size_t at = key.find('@');
    const bool numeric = at != std::string::npos && (eq == std::string::npos || at < eq);
    const size_t split = numeric ? at : eq;
    if (split == std::string::npos || split == 0) {
      *error = where + " is not of the form attr=value or attr@[lo,hi)";
      return false;
    }
    const std::string name = key.substr(0, split);
    const bool is_new = attributes_.count(name) == 0;
    AttributeBits& attr = attributes_[name];
    if (is_new) {
      attr.numeric = numeric;
    } else if (attr.numeric != numeric) {
      *error = where + ": attribute " + Quote(name) +
               " has both categorical (attr=value) and numeric (attr@[lo,hi)) keys";
      return false;
    }
    if (!numeric) {
      if (!attr.values.emplace(key.substr(eq + 1), i).second) {
        *error = where + " is a duplicate key";
        return false;
      }
      continue;
    }
    NumericBucket bucket;
    if (!ParseBucket(key.substr(at + 1), &bucket)) {
      *error = where + " is not a numeric bucket attr@[lo,hi) (lo, hi: decimal numbers, "
               "empty for an open end)";
      return false;
    }
    bucket.bit = i;
    attr.buckets.push_back(std::move(bucket));
  }
  // The buckets of each numeric attribute must tile the number line.
  for (auto& entry : attributes_) {
    AttributeBits& attr = entry.second;
    if (!attr.numeric) continue;
    std::stable_sort(attr.buckets.begin(), attr.buckets.end(),
                     [](const NumericBucket& a, const NumericBucket& b) {
                       return a.lo < b.lo || (a.lo == b.lo && a.hi < b.hi);
                     });
    bool tiles = attr.buckets.front().lo == -kInf && attr.buckets.back().hi == kInf;
    for (size_t b = 0; b < attr.buckets.size(); ++b) {
      tiles &= attr.buckets[b].lo < attr.buckets[b].hi;
      if (b > 0) tiles &= attr.buckets[b - 1].hi == attr.buckets[b].lo;
    }
    if (!tiles) {
      std::vector<std::string> listed;
      for (const NumericBucket& b : attr.buckets) listed.push_back(BucketText(b));
      *error = "bit_keys: the buckets of numeric attribute " + Quote(entry.first) + " (" +
               JoinShortened(listed, /*sort=*/false) +
               ") must tile the number line: [,b1), [b1,b2), ..., [bn,) with b1 < ... < bn";
      return false;
    }
  }
  return true;
}

const AttributeBits* BitKeyIndex::Find(const std::string& attribute) const {
  auto it = attributes_.find(attribute);
  return it == attributes_.end() ? nullptr : &it->second;
}

std::string BitKeyIndex::KnownAttributes() const {
  std::vector<std::string> names;
  for (const auto& entry : attributes_) names.push_back(entry.first);
  return JoinShortened(names, /*sort=*/true);
}

bool CompileFilter(const FilterNode& root, const BitKeyIndex& index,
                   UnknownValuePolicy unknown_value, Program* program, std::string* error) {
  program->clear();
  Expr expr;
  Lowering lowering(index, unknown_value, error);
  if (!lowering.Lower(root, &expr)) return false;
  OrderForStack(&expr);
  const int need = StackNeed(expr);
  if (need > kMaxProgramStack) {
    *error = "filter too complex: its program needs an evaluation stack of " +
             std::to_string(need) + " > " + std::to_string(kMaxProgramStack);
    return false;
  }
  Emit(expr, index.num_words(), program);
  return true;
}

}  // namespace filter
}  // namespace linr
