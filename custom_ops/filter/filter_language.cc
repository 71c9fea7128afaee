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
    root->kind = FilterNode::Kind::kAnd;
    root->children.clear();
    if (Peek().kind == TokenKind::kEnd) return true;  // empty filter
    if (!ParseConjunction(root)) return false;
    if (Peek().kind != TokenKind::kEnd) return Fail(Peek(), "expected AND or end of filter");
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

  // conjunction := clause ("AND" clause)*
  // (An OR level would wrap this; NOT / parentheses would go into ParseClause.)
  bool ParseConjunction(FilterNode* out) {
    out->kind = FilterNode::Kind::kAnd;
    do {
      FilterNode clause;
      if (!ParseClause(&clause)) return false;
      out->children.push_back(std::move(clause));
    } while (PeekKeyword("AND") && (Advance(), true));
    return true;
  }

  // clause := IDENT "=" value | IDENT "IN" "(" value ("," value)* ")"
  bool ParseClause(FilterNode* out) {
    const Token& name = Peek();
    if (name.kind != TokenKind::kWord) return Fail(name, "expected an attribute name");
    Advance();
    out->kind = FilterNode::Kind::kMatch;
    out->attribute = name.text;
    out->attribute_position = name.position;
    if (Peek().kind == TokenKind::kEquals) {
      Advance();
      return ParseValue(out);
    }
    if (PeekKeyword("IN")) {
      Advance();
      if (Peek().kind != TokenKind::kLParen) return Fail(Peek(), "expected '(' after IN");
      Advance();
      if (!ParseValue(out)) return false;
      while (Peek().kind == TokenKind::kComma) {
        Advance();
        if (!ParseValue(out)) return false;
      }
      if (Peek().kind != TokenKind::kRParen) return Fail(Peek(), "expected ',' or ')'");
      Advance();
      return true;
    }
    return Fail(Peek(), "expected '=' or IN after attribute '" + name.text + "'");
  }

  bool ParseValue(FilterNode* out) {
    const Token& token = Peek();
    if (token.kind != TokenKind::kWord && token.kind != TokenKind::kString) {
      return Fail(token, "expected a value");
    }
    out->values.push_back(ValueRef{token.text, token.position});
    Advance();
    return true;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  std::string* error_ = nullptr;
};

}  // namespace

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
    TokenKind kind;
    switch (c) {
      case '=': kind = TokenKind::kEquals; break;
      case '(': kind = TokenKind::kLParen; break;
      case ')': kind = TokenKind::kRParen; break;
      case ',': kind = TokenKind::kComma; break;
      default:
        *error = SyntaxError(start, "'" + std::string(1, c) + "'", "unexpected character");
        return false;
    }
    ++i;
    tokens->push_back(Token{kind, std::string(1, c), std::string(1, c), start});
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
