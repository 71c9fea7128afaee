#include "custom_ops/filter/filter_compiler.h"

#include <algorithm>

namespace linr {
namespace filter {
namespace {

constexpr int kMaxListedAttributes = 32;

bool LowerMatch(const FilterNode& node, const BitKeyIndex& index,
                UnknownValuePolicy unknown_value, ClauseBits* clause, std::string* error) {
  if (IsReservedName(node.attribute)) {
    *error = "reserved attribute '" + node.attribute + "' at position " +
             std::to_string(node.attribute_position) + " cannot be used in a filter";
    return false;
  }
  if (!index.HasAttribute(node.attribute)) {
    *error = "unknown attribute '" + node.attribute + "' at position " +
             std::to_string(node.attribute_position) + " (known: " +
             index.KnownAttributes() + ")";
    return false;
  }
  clause->assign(index.num_words(), 0u);
  for (const ValueRef& value : node.values) {
    const int64_t bit = index.Lookup(node.attribute, value.text);
    if (bit < 0) {
      if (unknown_value == UnknownValuePolicy::kMatchNone) continue;
      *error = "unknown value '" + value.text + "' for attribute '" + node.attribute +
               "' at position " + std::to_string(value.position);
      return false;
    }
    (*clause)[bit / 32] |= 1u << (bit % 32);
  }
  return true;
}

}  // namespace

bool IsReservedName(const std::string& name) {
  return name.size() >= 2 && name[0] == '_' && name[1] == '_';
}

bool BitKeyIndex::Build(const std::vector<std::string>& keys, std::string* error) {
  bits_.clear();
  num_bits_ = static_cast<int64_t>(keys.size());
  for (int64_t i = 0; i < num_bits_; ++i) {
    const std::string& key = keys[i];
    if (IsReservedName(key)) continue;  // e.g. "__live__": never addressable
    const size_t eq = key.find('=');
    if (eq == std::string::npos || eq == 0) {
      *error = "bit_keys[" + std::to_string(i) + "] = '" + key +
               "' is not of the form attr=value";
      return false;
    }
    auto& values = bits_[key.substr(0, eq)];
    if (!values.emplace(key.substr(eq + 1), i).second) {
      *error = "bit_keys[" + std::to_string(i) + "] = '" + key + "' is a duplicate key";
      return false;
    }
  }
  return true;
}

int64_t BitKeyIndex::Lookup(const std::string& attribute, const std::string& value) const {
  auto attr = bits_.find(attribute);
  if (attr == bits_.end()) return -2;
  auto bit = attr->second.find(value);
  return bit == attr->second.end() ? -1 : bit->second;
}

bool BitKeyIndex::HasAttribute(const std::string& attribute) const {
  return bits_.count(attribute) > 0;
}

std::string BitKeyIndex::KnownAttributes() const {
  std::vector<std::string> names;
  names.reserve(bits_.size());
  for (const auto& entry : bits_) names.push_back(entry.first);
  std::sort(names.begin(), names.end());
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxListedAttributes; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > kMaxListedAttributes) {
    out += ", ... (" + std::to_string(names.size()) + " in all)";
  }
  if (names.empty()) out = "none";
  return out;
}

bool CompileFilter(const FilterNode& root, const BitKeyIndex& index,
                   UnknownValuePolicy unknown_value, std::vector<ClauseBits>* clauses,
                   std::string* error) {
  clauses->clear();
  switch (root.kind) {
    case FilterNode::Kind::kMatch: {
      ClauseBits clause;
      if (!LowerMatch(root, index, unknown_value, &clause, error)) return false;
      clauses->push_back(std::move(clause));
      return true;
    }
    case FilterNode::Kind::kAnd:
      for (const FilterNode& child : root.children) {
        std::vector<ClauseBits> child_clauses;
        if (!CompileFilter(child, index, unknown_value, &child_clauses, error)) return false;
        for (auto& clause : child_clauses) clauses->push_back(std::move(clause));
      }
      return true;
  }
  *error = "internal error: unsupported filter node";
  return false;
}

}  // namespace filter
}  // namespace linr
