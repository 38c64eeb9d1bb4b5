#include "runtime/chat/jinja/lexer.h"

#include <cctype>
#include <cstdlib>

#include "runtime/chat/jinja/value.h"
#include "runtime/core/error.h"

namespace moe::jinja {
namespace {

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

class Lexer {
 public:
  Lexer(std::string src, const std::string& name) : src_(std::move(src)), name_(name) {
    for (std::size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    std::size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      std::size_t k = find_tag(pos);
      if (k == std::string::npos) {
        emit_text(src_.substr(pos), pos);
        break;
      }
      std::string text = src_.substr(pos, k - pos);
      char kind = src_[k + 1];  // '{', '%' or '#'
      char sign = k + 2 < src_.size() && (src_[k + 2] == '-' || src_[k + 2] == '+') ? src_[k + 2] : '\0';
      std::size_t raw_end = kind == '%' ? match_raw_begin(k) : std::string::npos;
      text = strip_before(text, sign, kind != '{', line_starting);
      emit_text(text, pos);
      std::size_t after = k + 2 + (sign ? 1 : 0);
      if (raw_end != std::string::npos) {
        pos = lex_raw(k, raw_end);
      } else if (kind == '#') {
        pos = lex_comment(k, after);
      } else {
        pos = lex_tag(k, after, kind == '{');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back({Tok::kEof, "", pos_of(src_.size())});
    return std::move(tokens_);
  }

 private:
  Pos pos_of(std::size_t off) const {
    std::size_t lo = 0, hi = line_starts_.size();
    while (hi - lo > 1) {
      std::size_t mid = (lo + hi) / 2;
      if (line_starts_[mid] <= off) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return {static_cast<int>(lo) + 1, static_cast<int>(off - line_starts_[lo]) + 1};
  }

  [[noreturn]] void error(std::size_t off, const std::string& what) const {
    Pos p = pos_of(off);
    fail(name_, ":", p.line, ":", p.col, ": ", what);
  }

  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  void emit_text(const std::string& text, std::size_t off) {
    if (!text.empty()) tokens_.push_back({Tok::kText, text, pos_of(off)});
  }

  // Whitespace control on the text before a tag (jinja2's OptionalLStrip).
  static std::string strip_before(const std::string& text, char sign, bool block_like, bool line_starting) {
    if (sign == '-') {
      std::size_t n = text.size();
      while (n > 0 && is_ws(text[n - 1])) --n;
      return text.substr(0, n);
    }
    if (sign == '+' || !block_like) return text;
    std::size_t nl = text.rfind('\n');
    std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
    if (l_pos == 0 && !line_starting) return text;
    if (l_pos == text.size()) return text;
    for (std::size_t i = l_pos; i < text.size(); ++i) {
      if (!is_ws(text[i])) return text;
    }
    return text.substr(0, l_pos);
  }

  // After a closing "%}" or "#}" that had no sign: trim_blocks drops one newline.
  std::size_t after_close(std::size_t end, char sign, bool trim) const {
    if (sign == '-') {
      while (end < src_.size() && is_ws(src_[end])) ++end;
    } else if (sign == '\0' && trim && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    return end;
  }

  // "{%[-+]?\s*raw\s*(-?%})": returns the offset after the tag, or npos.
  std::size_t match_raw_begin(std::size_t k) const {
    std::size_t i = k + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    while (i < src_.size() && is_ws(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0) return std::string::npos;
    i += 3;
    while (i < src_.size() && is_ws(src_[i])) ++i;
    if (src_.compare(i, 3, "-%}") == 0) {
      i += 3;
      while (i < src_.size() && is_ws(src_[i])) ++i;
      return i;
    }
    if (src_.compare(i, 2, "%}") == 0) return i + 2;
    return std::string::npos;
  }

  std::size_t lex_raw(std::size_t k, std::size_t body) {
    for (std::size_t i = src_.find("{%", body); i != std::string::npos; i = src_.find("{%", i + 1)) {
      std::size_t j = i + 2;
      char sign = j < src_.size() && (src_[j] == '-' || src_[j] == '+') ? src_[j] : '\0';
      if (sign) ++j;
      while (j < src_.size() && is_ws(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_ws(src_[j])) ++j;
      char close = src_.compare(j, 3, "-%}") == 0 ? '-' : src_.compare(j, 3, "+%}") == 0 ? '+' : '\0';
      if (!close && src_.compare(j, 2, "%}") != 0) continue;
      emit_text(strip_before(src_.substr(body, i - body), sign, true, false), body);
      return after_close(j + (close ? 3 : 2), close, true);
    }
    error(k, "unterminated 'raw' block (missing '{% endraw %}')");
  }

  std::size_t lex_comment(std::size_t k, std::size_t after) {
    std::size_t end = src_.find("#}", after);
    if (end == std::string::npos) error(k, "unterminated comment (missing '#}')");
    char sign = end > after && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    return after_close(end + 2, sign, true);
  }

  std::size_t lex_tag(std::size_t k, std::size_t i, bool var) {
    tokens_.push_back({var ? Tok::kVarBegin : Tok::kBlockBegin, var ? "{{" : "{%", pos_of(k)});
    const char* close = var ? "}}" : "%}";
    int depth = 0;
    while (true) {
      while (i < src_.size() && is_ws(src_[i])) ++i;
      if (i >= src_.size()) error(k, std::string("unterminated '") + (var ? "{{" : "{%") + "' tag");
      if (depth == 0) {
        char sign = (src_[i] == '-' || (!var && src_[i] == '+')) ? src_[i] : '\0';
        if (src_.compare(i + (sign ? 1 : 0), 2, close) == 0) {
          tokens_.push_back({var ? Tok::kVarEnd : Tok::kBlockEnd, close, pos_of(i)});
          return after_close(i + (sign ? 3 : 2), sign, !var);
        }
      }
      i = lex_token(i, depth);
    }
  }

  std::size_t lex_token(std::size_t i, int& depth) {
    char c = src_[i];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) ++j;
      tokens_.push_back({Tok::kName, src_.substr(i, j - i), pos_of(i)});
      return j;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(i);
    if (c == '\'' || c == '"') return lex_string(i);
    static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                       ">",  "=",  ".",  ",",  ":",  "|",  "(", ")", "[", "]", "{", "}"};
    for (const char* op : kOps) {
      std::string o = op;
      if (src_.compare(i, o.size(), o) == 0) {
        if (o == "(" || o == "[" || o == "{") ++depth;
        if ((o == ")" || o == "]" || o == "}") && depth > 0) --depth;
        tokens_.push_back({Tok::kOp, o, pos_of(i)});
        return i + o.size();
      }
    }
    error(i, std::string("unexpected character '") + c + "'");
  }

  std::size_t lex_number(std::size_t i) {
    auto digits = [&](std::size_t j) {
      while (j < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) ++j;
      return j;
    };
    std::size_t j = digits(i);
    bool is_float = false;
    bool after_dot = i > 0 && src_[i - 1] == '.';
    if (!after_dot && j + 1 < src_.size() && src_[j] == '.' && std::isdigit(static_cast<unsigned char>(src_[j + 1]))) {
      j = digits(j + 1);
      is_float = true;
    }
    if (!after_dot && j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
      std::size_t e = j + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        j = digits(e);
        is_float = true;
      }
    }
    std::string text;
    for (std::size_t k = i; k < j; ++k) {
      if (src_[k] != '_') text += src_[k];
    }
    tokens_.push_back({is_float ? Tok::kFloat : Tok::kInt, text, pos_of(i)});
    return j;
  }

  std::size_t lex_string(std::size_t i) {
    char q = src_[i];
    std::string out;
    std::size_t j = i + 1;
    while (true) {
      if (j >= src_.size()) error(i, "unterminated string literal");
      char c = src_[j];
      if (c == q) break;
      if (c != '\\' || j + 1 >= src_.size()) {
        out += c;
        ++j;
        continue;
      }
      char e = src_[j + 1];
      j += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;
        case 'x':
        case 'u':
        case 'U': {
          std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (j + n > src_.size()) error(j, "truncated \\" + std::string(1, e) + " escape");
          std::string hex = src_.substr(j, n);
          for (char h : hex) {
            if (!std::isxdigit(static_cast<unsigned char>(h))) error(j, "invalid \\" + std::string(1, e) + " escape");
          }
          out += utf8_encode(static_cast<char32_t>(std::strtoul(hex.c_str(), nullptr, 16)));
          j += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            unsigned v = static_cast<unsigned>(e - '0');
            for (int n = 0; n < 2 && j < src_.size() && src_[j] >= '0' && src_[j] <= '7'; ++n, ++j) {
              v = v * 8 + static_cast<unsigned>(src_[j] - '0');
            }
            out += utf8_encode(static_cast<char32_t>(v));
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back({Tok::kString, out, pos_of(i)});
    return j + 1;
  }

  std::string src_;
  const std::string& name_;
  std::vector<std::size_t> line_starts_{0};
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const std::string& name) {
  std::string src;
  src.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();  // keep_trailing_newline=False
  return Lexer(std::move(src), name).run();
}

}  // namespace moe::jinja
