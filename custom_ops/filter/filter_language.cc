#include "custom_ops/filter/filter_language.h"

#include <cctype>
#include <utility>

namespace linr {
namespace filter {
namespace {

bool IsBareChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

bool EqualsIgnoreCase(const std::string& a, const char* b) {
  size_t i = 0;
  for (; i < a.size() && b[i] != '\0'; ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return i == a.size() && b[i] == '\0';
}

bool IsKeyword(const std::string& word) {
  for (const char* keyword : {"AND", "OR", "NOT", "IN", "ALL", "BETWEEN"}) {
    if (EqualsIgnoreCase(word, keyword)) return true;
  }
  return false;
}

std::string SyntaxError(int position, const std::string& near, const std::string& what) {
  return "syntax error at position " + std::to_string(position) + " near " + near + ": " +
         what;
}

std::string Describe(const Token& token) {
  if (token.kind == TokenKind::kEnd) return "end of filter";
  return "'" + token.raw + "'";
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  bool ParseTop(FilterNode* root, std::string* error) {
    error_ = error;
    *root = FilterNode();
    root->kind = FilterNode::Kind::kTrue;
    if (Peek().kind == TokenKind::kEnd) return true;  // empty filter
    if (!ParseOr(root)) return false;
    if (Peek().kind != TokenKind::kEnd) {
      return Fail(Peek(), "expected AND, OR or end of filter");
    }
    return true;
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Advance() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool PeekKeyword(const char* keyword) const {
    return Peek().kind == TokenKind::kWord && EqualsIgnoreCase(Peek().text, keyword);
  }
  bool Fail(const Token& at, const std::string& what) {
    *error_ = SyntaxError(at.position, Describe(at), what);
    return false;
  }
  // Enters one level of parentheses / NOT; fails past kMaxNestingDepth.
  bool Enter(const Token& at) {
    if (++depth_ > kMaxNestingDepth) {
      *error_ = "filter nested too deeply at position " + std::to_string(at.position) +
                " near " + Describe(at) + ": more than " + std::to_string(kMaxNestingDepth) +
                " levels of parentheses and NOT";
      return false;
    }
    return true;
  }

  // Parses `operand (KEYWORD operand)*` into one n-ary node of `kind`.
  template <typename ParseOperand>
  bool ParseChain(const char* keyword, FilterNode::Kind kind, FilterNode* out,
                  ParseOperand parse_operand) {
    FilterNode first;
    if (!parse_operand(&first)) return false;
    if (!PeekKeyword(keyword)) {
      *out = std::move(first);
      return true;
    }
    FilterNode chain;
    chain.kind = kind;
    chain.children.push_back(std::move(first));
    while (PeekKeyword(keyword)) {
      Advance();
      FilterNode next;
      if (!parse_operand(&next)) return false;
      chain.children.push_back(std::move(next));
    }
    *out = std::move(chain);
    return true;
  }

  // or_expr := and_expr ("OR" and_expr)*
  bool ParseOr(FilterNode* out) {
    return ParseChain("OR", FilterNode::Kind::kOr, out,
                      [this](FilterNode* node) { return ParseAnd(node); });
  }

  // and_expr := not_expr ("AND" not_expr)*
  bool ParseAnd(FilterNode* out) {
    return ParseChain("AND", FilterNode::Kind::kAnd, out,
                      [this](FilterNode* node) { return ParseNot(node); });
  }

  // not_expr := "NOT" not_expr | primary
  bool ParseNot(FilterNode* out) {
    if (!PeekKeyword("NOT")) return ParsePrimary(out);
    if (!Enter(Peek())) return false;
    Advance();
    FilterNode child;
    if (!ParseNot(&child)) return false;
    --depth_;
    *out = FilterNode();
    out->kind = FilterNode::Kind::kNot;
    out->children.push_back(std::move(child));
    return true;
  }

  // primary := "(" or_expr ")" | predicate
  bool ParsePrimary(FilterNode* out) {
    if (Peek().kind != TokenKind::kLParen) return ParsePredicate(out);
    if (!Enter(Peek())) return false;
    Advance();
    if (!ParseOr(out)) return false;
    if (Peek().kind != TokenKind::kRParen) return Fail(Peek(), "expected AND, OR or ')'");
    Advance();
    --depth_;
    return true;
  }

  bool ParsePredicate(FilterNode* out) {
    const Token name = Peek();
    if (name.kind != TokenKind::kWord || IsKeyword(name.text)) {
      return Fail(name, "expected an attribute name, NOT or '('");
    }
    Advance();
    *out = FilterNode();
    out->kind = FilterNode::Kind::kPredicate;
    out->attribute = name.text;
    out->attribute_position = name.position;
    const Token op = Peek();
    out->operator_text = op.raw;
    out->operator_position = op.position;
    switch (op.kind) {
      case TokenKind::kEquals: out->comparison = Comparison::kEq; break;
      case TokenKind::kNotEquals: out->comparison = Comparison::kNe; break;
      case TokenKind::kLess: out->comparison = Comparison::kLess; break;
      case TokenKind::kLessEqual: out->comparison = Comparison::kLessEq; break;
      case TokenKind::kGreater: out->comparison = Comparison::kGreater; break;
      case TokenKind::kGreaterEqual: out->comparison = Comparison::kGreaterEq; break;
      default:
        if (PeekKeyword("IN")) {
          out->comparison = Comparison::kIn;
          Advance();
          return ParseList(out);
        }
        if (PeekKeyword("ALL")) {
          out->comparison = Comparison::kAll;
          Advance();
          return ParseList(out);
        }
        if (PeekKeyword("BETWEEN")) {
          out->comparison = Comparison::kBetween;
          Advance();
          if (!ParseValue(out)) return false;
          if (!PeekKeyword("AND")) return Fail(Peek(), "expected AND in BETWEEN a AND b");
          Advance();
          return ParseValue(out);
        }
        if (PeekKeyword("NOT")) {
          Advance();
          if (!PeekKeyword("IN")) return Fail(Peek(), "expected IN after NOT");
          out->comparison = Comparison::kNotIn;
          out->operator_text = op.raw + " " + Peek().raw;
          Advance();
          return ParseList(out);
        }
        return Fail(op, "expected =, !=, <, <=, >, >=, IN, NOT IN, ALL or BETWEEN after attribute '" +
                            name.text + "'");
    }
    Advance();
    return ParseValue(out);
  }

  // "(" value ("," value)* ")" after IN / NOT IN / ALL.
  bool ParseList(FilterNode* out) {
    std::string keyword = out->comparison == Comparison::kAll ? "ALL" : "IN";
    if (Peek().kind != TokenKind::kLParen) return Fail(Peek(), "expected '(' after " + keyword);
    Advance();
    if (Peek().kind == TokenKind::kRParen) {
      return Fail(Peek(), "empty " + keyword + " list (give at least one value)");
    }
    if (!ParseValue(out)) return false;
    while (Peek().kind == TokenKind::kComma) {
      Advance();
      if (!ParseValue(out)) return false;
    }
    if (Peek().kind != TokenKind::kRParen) return Fail(Peek(), "expected ',' or ')'");
    Advance();
    return true;
  }

  bool ParseValue(FilterNode* out) {
    const Token& token = Peek();
    if (token.kind != TokenKind::kWord && token.kind != TokenKind::kString) {
      return Fail(token, "expected a value");
    }
    out->values.push_back(ValueRef{token.text, token.raw, token.position});
    Advance();
    return true;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::string* error_ = nullptr;
};

}  // namespace

bool IsRangeComparison(Comparison comparison) {
  return comparison == Comparison::kLess || comparison == Comparison::kLessEq ||
         comparison == Comparison::kGreater || comparison == Comparison::kGreaterEq ||
         comparison == Comparison::kBetween;
}

bool Tokenize(const std::string& text, std::vector<Token>* tokens, std::string* error) {
  tokens->clear();
  const int n = static_cast<int>(text.size());
  int i = 0;
  while (true) {
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n) break;
    const char c = text[i];
    const int start = i;
    if (c == '"' || c == '\'') {
      std::string value;
      ++i;
      bool closed = false;
      while (i < n) {
        if (text[i] == '\\' && i + 1 < n) {
          value.push_back(text[i + 1]);
          i += 2;
        } else if (text[i] == c) {
          closed = true;
          ++i;
          break;
        } else {
          value.push_back(text[i++]);
        }
      }
      if (!closed) {
        std::string rest = text.substr(start, 24);
        if (n - start > 24) rest += "...";
        *error = SyntaxError(start, "'" + rest + "'", "unterminated string");
        return false;
      }
      tokens->push_back(Token{TokenKind::kString, value, text.substr(start, i - start), start});
      continue;
    }
    if (IsBareChar(c)) {
      while (i < n && IsBareChar(text[i])) ++i;
      std::string word = text.substr(start, i - start);
      tokens->push_back(Token{TokenKind::kWord, word, word, start});
      continue;
    }
    const bool next_is_equals = i + 1 < n && text[i + 1] == '=';
    TokenKind kind;
    int length = 1;
    switch (c) {
      case '=': kind = TokenKind::kEquals; break;
      case '(': kind = TokenKind::kLParen; break;
      case ')': kind = TokenKind::kRParen; break;
      case ',': kind = TokenKind::kComma; break;
      case '<':
        kind = next_is_equals ? TokenKind::kLessEqual : TokenKind::kLess;
        length = next_is_equals ? 2 : 1;
        break;
      case '>':
        kind = next_is_equals ? TokenKind::kGreaterEqual : TokenKind::kGreater;
        length = next_is_equals ? 2 : 1;
        break;
      case '!':
        if (next_is_equals) {
          kind = TokenKind::kNotEquals;
          length = 2;
          break;
        }
        [[fallthrough]];
      default:
        *error = SyntaxError(start, "'" + std::string(1, c) + "'", "unexpected character");
        return false;
    }
    i += length;
    const std::string op = text.substr(start, length);
    tokens->push_back(Token{kind, op, op, start});
  }
  tokens->push_back(Token{TokenKind::kEnd, "", "", n});
  return true;
}

bool ParseFilter(const std::string& text, FilterNode* root, std::string* error) {
  std::vector<Token> tokens;
  if (!Tokenize(text, &tokens, error)) return false;
  Parser parser(std::move(tokens));
  return parser.ParseTop(root, error);
}

}  // namespace filter
}  // namespace linr
