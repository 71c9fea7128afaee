// The LiNR attribute filter language: lexer, parser and AST.
//
// Current grammar (keywords are case-insensitive, whitespace is free):
//   filter := <empty> | conjunction
//   conjunction := clause ("AND" clause)*
//   clause := IDENT "=" value | IDENT "IN" "(" value ("," value)* ")"
//   value  := '"' chars '"' | "'" chars "'" | bare       bare := [A-Za-z0-9_.-]+
// Inside quotes a backslash makes the next character literal.
//
// The parser is recursive descent over a token vector and produces a small AST
// (FilterNode) so that OR / NOT / parentheses / ranges can be added as new node
// kinds and grammar levels without touching the lowering of existing nodes.
// This file has no TensorFlow dependency.
#ifndef LINR_CUSTOM_OPS_FILTER_FILTER_LANGUAGE_H_
#define LINR_CUSTOM_OPS_FILTER_FILTER_LANGUAGE_H_

#include <string>
#include <vector>

namespace linr {
namespace filter {

enum class TokenKind {
  kWord,    // bare token [A-Za-z0-9_.-]+ (identifiers, keywords, bare values)
  kString,  // quoted string; `text` holds the unquoted value
  kEquals,
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
  std::string text;
  int position;
};

struct FilterNode {
  enum class Kind {
    kAnd,    // all children must hold; no children = match everything
    kMatch,  // attribute takes one of `values` (IDENT = v, IDENT IN (...))
  };
  Kind kind = Kind::kAnd;
  std::vector<FilterNode> children;  // kAnd
  std::string attribute;             // kMatch
  int attribute_position = 0;        // kMatch
  std::vector<ValueRef> values;      // kMatch
};

// Splits `text` into tokens (the last one is kEnd). On failure returns false
// and sets `error` (e.g. "syntax error at position 3 near '\"ab': unterminated
// string").
bool Tokenize(const std::string& text, std::vector<Token>* tokens, std::string* error);

// Parses a filter expression. An empty or all-whitespace filter yields an kAnd
// node without children. On failure returns false and sets `error`.
bool ParseFilter(const std::string& text, FilterNode* root, std::string* error);

}  // namespace filter
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_FILTER_FILTER_LANGUAGE_H_
