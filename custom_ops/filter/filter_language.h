// The LiNR attribute filter language: lexer, parser and AST.
//
// Grammar (keywords AND OR NOT IN ALL BETWEEN are case-insensitive; whitespace is free):
//   filter     := <empty> | or_expr
//   or_expr    := and_expr ("OR" and_expr)*
//   and_expr   := not_expr ("AND" not_expr)*
//   not_expr   := "NOT" not_expr | primary
//   primary    := "(" or_expr ")" | predicate
//   predicate  := ATTR "=" value | ATTR "!=" value
//               | ATTR ["NOT"] "IN" "(" value ("," value)* ")"
//               | ATTR "ALL" "(" value ("," value)* ")"
//               | ATTR ("<" | "<=" | ">" | ">=") value
//               | ATTR "BETWEEN" value "AND" value
//   value      := '"' chars '"' | "'" chars "'" | bare     bare := [A-Za-z0-9_.-]+
// ATTR is a bare word that is not a keyword. Inside quotes a backslash makes
// the next character literal. Precedence: NOT > AND > OR. Parentheses and NOT
// may nest at most kMaxNestingDepth levels.
//
// The parser only checks syntax; attribute kinds (categorical / numeric),
// numbers and values are checked when the AST is lowered (filter_compiler.h).
// This file has no TensorFlow dependency.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_LANGUAGE_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_LANGUAGE_H_

#include <string>
#include <vector>

namespace linr {
namespace filter {

// Deepest nesting of parentheses and NOT; equals kMaxProgramStack of
// filter_program.h (checked there by a static_assert in the compiler).
constexpr int kMaxNestingDepth = 64;

enum class TokenKind {
  kWord,    // bare token [A-Za-z0-9_.-]+ (identifiers, keywords, bare values)
  kString,  // quoted string; `text` holds the unquoted value
  kEquals,        // =
  kNotEquals,     // !=
  kLess,          // <
  kLessEqual,     // <=
  kGreater,       // >
  kGreaterEqual,  // >=
  kLParen,
  kRParen,
  kComma,
  kEnd,
};

struct Token {
  TokenKind kind;
  std::string text;  // value text (unquoted for strings)
  std::string raw;   // source text as written, for error messages
  int position;      // 0-based character offset in the filter string
};

// A value literal with its source position.
struct ValueRef {
  std::string text;  // unquoted
  std::string raw;   // as written
  int position;
};

// How a predicate compares the attribute with its value(s).
enum class Comparison {
  kEq,       // attr = v
  kNe,       // attr != v
  kIn,       // attr IN (v, ...)
  kNotIn,    // attr NOT IN (v, ...)
  kAll,      // attr ALL (v, ...)
  kLess,     // attr < x
  kLessEq,   // attr <= x
  kGreater,  // attr > x
  kGreaterEq,// attr >= x
  kBetween,  // attr BETWEEN a AND b (values[0], values[1]; inclusive)
};

// True for <, <=, >, >=, BETWEEN (numeric comparisons).
bool IsRangeComparison(Comparison comparison);

struct FilterNode {
  enum class Kind {
    kTrue,       // empty filter: matches everything
    kAnd,        // all children hold (>= 2 children)
    kOr,         // some child holds (>= 2 children)
    kNot,        // the single child does not hold
    kPredicate,  // attribute compared with values
  };
  Kind kind = Kind::kTrue;
  std::vector<FilterNode> children;  // kAnd, kOr, kNot
  // kPredicate:
  std::string attribute;
  int attribute_position = 0;
  Comparison comparison = Comparison::kEq;
  std::string operator_text;  // "=", "NOT IN", "<", ... (as written)
  int operator_position = 0;
  std::vector<ValueRef> values;  // one for =, != and ranges; >= 1 for lists
};

// Splits `text` into tokens (the last one is kEnd). On failure returns false
// and sets `error` (e.g. "syntax error at position 3 near '\"ab': unterminated
// string").
bool Tokenize(const std::string& text, std::vector<Token>* tokens, std::string* error);

// Parses a filter expression. An empty or all-whitespace filter yields a kTrue
// node. On failure returns false and sets `error`.
bool ParseFilter(const std::string& text, FilterNode* root, std::string* error);

}  // namespace filter
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_LANGUAGE_H_
