#include "custom_ops/filter/filter_compiler.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "custom_ops/filter/filter_columns.h"
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
  enum class Kind { kAny, kAll, kConst, kNot, kAnd, kOr, kColumn };
  Kind kind = Kind::kConst;
  bool value = true;        // kConst
  Mask mask;                // kAny, kAll
  int32_t opcode = kNop;    // kColumn: a column leaf (filter_columns.h)
  int32_t operand = 0;      // kColumn: its operand record
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
    case Expr::Kind::kColumn:
      program->push_back({e.opcode, Mask(num_words, 0u), e.operand});
      return;
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
  Lowering(const BitKeyIndex& index, const ColumnSchema* columns,
           UnknownValuePolicy unknown_value, ColumnOperands* operands, std::string* error)
      : index_(index), columns_(columns), unknown_value_(unknown_value), operands_(operands),
        error_(error) {}

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
    if (columns_ != nullptr) {
      if (!columns_->id_attribute().empty() && node.attribute == columns_->id_attribute()) {
        return LowerIds(node, out);
      }
      if (const ColumnSchema::Number* number = columns_->FindNumber(node.attribute)) {
        return LowerNumber(node, *number, out);
      }
      if (const ColumnSchema::Values* values = columns_->FindValues(node.attribute)) {
        return LowerValues(node, *values, out);
      }
    }
    const AttributeBits* attr = index_.Find(node.attribute);
    if (attr == nullptr) {
      std::string known = index_.KnownAttributes();
      if (columns_ != nullptr) {
        std::vector<std::string> names = columns_->Names();
        if (known != "none") names.push_back(known);
        known = JoinShortened(names, /*sort=*/true);
      }
      return Fail("unknown attribute " + Quote(node.attribute) + " at position " +
                  std::to_string(node.attribute_position) + " (known: " + known + ")");
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
    if (node.comparison == Comparison::kBetween) {
      return Fail(PredicateText(node) + " at position " +
                  std::to_string(node.operator_position) +
                  ": BETWEEN is not exact on the [lo, hi) buckets of numeric attribute " +
                  Quote(node.attribute) + "; use < and >= with bucket boundaries (" +
                  Boundaries(attr) + "), or make it an exact numeric attribute");
    }
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

  Expr ColumnLeaf(int32_t opcode, std::array<int64_t, 4> record) {
    Expr e;
    e.kind = Expr::Kind::kColumn;
    e.opcode = opcode;
    e.operand = static_cast<int32_t>(operands_->records.size());
    operands_->records.push_back(record);
    return e;
  }

  bool WrongComparison(const FilterNode& node, const std::string& kind,
                       const std::string& allowed) {
    return TypeMismatch(node, "attribute " + Quote(node.attribute) + " is " + kind + "; " +
                                  Quote(node.operator_text) + " does not apply (use " +
                                  allowed + ")");
  }

  // `attr op x` on an exact numeric column -> kNumberRange lo <= x <= hi.
  bool LowerNumber(const FilterNode& node, const ColumnSchema::Number& number, Expr* out) {
    const Comparison cmp = node.comparison;
    if (cmp == Comparison::kIn || cmp == Comparison::kNotIn || cmp == Comparison::kAll) {
      return WrongComparison(node, "numeric", "<, <=, >, >=, =, != or BETWEEN a AND b");
    }
    Bound bounds[2];
    for (size_t v = 0; v < node.values.size(); ++v) {
      if (!ParseBound(node, node.values[v], number.is_float, &bounds[v])) return false;
    }
    // Inclusive interval [lo, hi]; `inside` false = its complement.
    Bound lo = Bound::Lowest(number.is_float), hi = Bound::Highest(number.is_float);
    bool negate = false;
    switch (cmp) {
      case Comparison::kLess: hi = bounds[0].Below(); break;
      case Comparison::kLessEq: hi = bounds[0].FloorOf(); break;
      case Comparison::kGreater: lo = bounds[0].Above(); break;
      case Comparison::kGreaterEq: lo = bounds[0].CeilOf(); break;
      case Comparison::kNe: negate = true; [[fallthrough]];
      case Comparison::kEq:
        lo = bounds[0].CeilOf();
        hi = bounds[0].FloorOf();
        break;
      case Comparison::kBetween:
        lo = bounds[0].CeilOf();
        hi = bounds[1].FloorOf();
        break;
      default:
        return Fail("internal error: unexpected comparison");
    }
    Expr leaf;
    if (lo.empty || hi.empty || Bound::Greater(lo, hi)) {
      leaf = Const(false);
    } else {
      leaf = ColumnLeaf(kNumberRange, {number.column, lo.bits, hi.bits, number.is_float ? 1 : 0});
    }
    *out = negate ? Not(std::move(leaf)) : std::move(leaf);
    return true;
  }

  // A threshold of an int64 or float64 column, and the inclusive bounds
  // derived from it. Integers are kept exactly (int64 literals past 2^53); a
  // fractional or out-of-range threshold of an int64 column rounds inward
  // (x < 2.5 is x <= 2; x >= 1e30 holds for no int64).
  struct Bound {
    bool is_float = false;
    bool empty = false;     // no value of the column satisfies the bound
    int64_t bits = 0;       // int64 value, or OrderedFloatKey of the float64
    bool exact_int = true;  // int column: the threshold is an int64
    double value = 0;       // the threshold as a double

    static Bound Int(int64_t v) { Bound b; b.bits = v; b.value = static_cast<double>(v); return b; }
    static Bound Real(double v) { Bound b; b.exact_int = false; b.value = v; return b; }
    static Bound Float(double v) {
      Bound b;
      b.is_float = true;
      b.value = v;
      int64_t pattern;
      std::memcpy(&pattern, &v, sizeof(v));
      b.bits = OrderedFloatKey(pattern);
      return b;
    }
    static Bound FloatKey(int64_t key) {
      Bound b;
      b.is_float = true;
      b.bits = key;
      return b;
    }
    static Bound Lowest(bool is_float) {
      return is_float ? Float(-kInf) : Int(std::numeric_limits<int64_t>::min());
    }
    static Bound Highest(bool is_float) {
      return is_float ? Float(kInf) : Int(std::numeric_limits<int64_t>::max());
    }
    static Bound Empty() { Bound b; b.empty = true; return b; }
    static bool Greater(const Bound& a, const Bound& b) { return a.bits > b.bits; }
    // Smallest column value >= the threshold.
    Bound CeilOf() const {
      if (is_float || exact_int) return *this;
      const double c = std::ceil(value);
      if (c >= 9223372036854775808.0) return Empty();
      if (c < -9223372036854775808.0) return Int(std::numeric_limits<int64_t>::min());
      return Int(static_cast<int64_t>(c));
    }
    // Largest column value <= the threshold.
    Bound FloorOf() const {
      if (is_float || exact_int) return *this;
      const double f = std::floor(value);
      if (f < -9223372036854775808.0) return Empty();
      if (f >= 9223372036854775808.0) return Int(std::numeric_limits<int64_t>::max());
      return Int(static_cast<int64_t>(f));
    }
    // Largest column value < the threshold.
    Bound Below() const {
      // The next double down / up is the key -1 / +1 (integer steps: no
      // float arithmetic, which flush-to-zero would round to 0 near 0).
      if (is_float) return FloatKey(bits - 1);
      if (!exact_int) return FloorOf();  // not an int64: floor < threshold
      if (bits == std::numeric_limits<int64_t>::min()) return Empty();
      return Int(bits - 1);
    }
    // Smallest column value > the threshold.
    Bound Above() const {
      if (is_float) return FloatKey(bits + 1);
      if (!exact_int) return CeilOf();
      if (bits == std::numeric_limits<int64_t>::max()) return Empty();
      return Int(bits + 1);
    }
  };

  bool ParseBound(const FilterNode& node, const ValueRef& value, bool is_float, Bound* out) {
    const std::string& text = value.text;
    double threshold;
    if (!ParseNumber(text, &threshold)) {
      return Fail(PredicateText(node) + " at position " + std::to_string(value.position) +
                  ": " + Quote(value.raw) + " is not a number (attribute " +
                  Quote(node.attribute) + " is numeric)");
    }
    if (is_float) {
      *out = Bound::Float(threshold);
      return true;
    }
    int64_t integer;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), integer);
    if (parsed.ec == std::errc() && parsed.ptr == text.data() + text.size()) {
      *out = Bound::Int(integer);
      return true;
    }
    // Fractional, exponent or out of int64 range: compare as a real number.
    if (std::floor(threshold) == threshold && std::fabs(threshold) < 9.2e18) {
      *out = Bound::Int(static_cast<int64_t>(threshold));
    } else {
      *out = Bound::Real(threshold);
    }
    return true;
  }

  // `attr = v`, `!=`, `IN`, `NOT IN`, `ALL` on a value-id attribute.
  bool LowerValues(const FilterNode& node, const ColumnSchema::Values& values, Expr* out) {
    if (IsRangeComparison(node.comparison)) {
      return WrongComparison(node, "categorical (value ids)", "=, !=, IN, NOT IN or ALL");
    }
    const int64_t first = static_cast<int64_t>(operands_->value_lookups.size());
    for (const ValueRef& value : node.values) {
      operands_->value_lookups.push_back(node.attribute + "=" + value.text);
    }
    const int64_t last = static_cast<int64_t>(operands_->value_lookups.size());
    const bool all = node.comparison == Comparison::kAll;
    Expr leaf = ColumnLeaf(all ? kValueAll : kValueAny, {values.begin, values.end, first, last});
    const bool negate = node.comparison == Comparison::kNe || node.comparison == Comparison::kNotIn;
    *out = negate ? Not(std::move(leaf)) : std::move(leaf);
    return true;
  }

  // `item_id IN (...)`, `NOT IN`, `=`, `!=`: the caller maps ids to slots.
  bool LowerIds(const FilterNode& node, Expr* out) {
    const Comparison cmp = node.comparison;
    if (cmp != Comparison::kEq && cmp != Comparison::kNe && cmp != Comparison::kIn &&
        cmp != Comparison::kNotIn) {
      return WrongComparison(node, "the item id", "=, !=, IN or NOT IN");
    }
    const int64_t first = static_cast<int64_t>(operands_->id_lookups.size());
    if (first + static_cast<int64_t>(node.values.size()) > kMaxIdsPerQuery) {
      return Fail("too many item ids at position " + std::to_string(node.operator_position) +
                  " near " + Quote(node.operator_text) + ": " +
                  std::to_string(first + node.values.size()) + " in this filter, at most " +
                  std::to_string(kMaxIdsPerQuery));
    }
    for (const ValueRef& value : node.values) operands_->id_lookups.push_back(value.text);
    const int64_t last = static_cast<int64_t>(operands_->id_lookups.size());
    Expr leaf = ColumnLeaf(kIdIn, {0, 0, first, last});
    const bool negate = cmp == Comparison::kNe || cmp == Comparison::kNotIn;
    *out = negate ? Not(std::move(leaf)) : std::move(leaf);
    return true;
  }

  const BitKeyIndex& index_;
  const ColumnSchema* columns_;
  UnknownValuePolicy unknown_value_;
  ColumnOperands* operands_;
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

bool ColumnSchema::Build(const std::vector<std::string>& number_specs,
                         const std::vector<std::string>& value_specs,
                         const std::string& id_attribute, std::string* error) {
  numbers_.clear();
  values_.clear();
  id_attribute_ = id_attribute;
  auto split = [](const std::string& spec, std::string* name, std::string* rest) {
    const size_t colon = spec.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    *name = spec.substr(0, colon);
    *rest = spec.substr(colon + 1);
    return true;
  };
  auto taken = [&](const std::string& name) {
    return numbers_.count(name) || values_.count(name) || name == id_attribute_;
  };
  for (size_t i = 0; i < number_specs.size(); ++i) {
    std::string name, type;
    if (!split(number_specs[i], &name, &type) || (type != "int64" && type != "float64") ||
        taken(name)) {
      *error = "number_columns[" + std::to_string(i) + "] = " + Quote(number_specs[i]) +
               " is not a new 'name:int64' or 'name:float64'";
      return false;
    }
    numbers_[name] = Number{static_cast<int64_t>(i), type == "float64"};
  }
  int64_t column = 0;
  for (size_t i = 0; i < value_specs.size(); ++i) {
    std::string name, width_text;
    int64_t width = 0;
    bool ok = split(value_specs[i], &name, &width_text) && !taken(name);
    if (ok) {
      const auto r = std::from_chars(width_text.data(), width_text.data() + width_text.size(), width);
      ok = r.ec == std::errc() && r.ptr == width_text.data() + width_text.size() && width >= 1;
    }
    if (!ok) {
      *error = "value_columns[" + std::to_string(i) + "] = " + Quote(value_specs[i]) +
               " is not a new 'name:width' (width >= 1)";
      return false;
    }
    values_[name] = Values{column, column + width};
    column += width;
  }
  return true;
}

const ColumnSchema::Number* ColumnSchema::FindNumber(const std::string& name) const {
  auto it = numbers_.find(name);
  return it == numbers_.end() ? nullptr : &it->second;
}

const ColumnSchema::Values* ColumnSchema::FindValues(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

std::vector<std::string> ColumnSchema::Names() const {
  std::vector<std::string> names;
  for (const auto& e : numbers_) names.push_back(e.first);
  for (const auto& e : values_) names.push_back(e.first);
  if (!id_attribute_.empty()) names.push_back(id_attribute_);
  return names;
}

bool CompileFilter(const FilterNode& root, const BitKeyIndex& index,
                   UnknownValuePolicy unknown_value, Program* program, std::string* error) {
  ColumnOperands unused;
  return CompileFilter(root, index, ColumnSchema(), unknown_value, program, &unused, error);
}

bool CompileFilter(const FilterNode& root, const BitKeyIndex& index,
                   const ColumnSchema& columns, UnknownValuePolicy unknown_value,
                   Program* program, ColumnOperands* operands, std::string* error) {
  program->clear();
  Expr expr;
  Lowering lowering(index, &columns, unknown_value, operands, error);
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
