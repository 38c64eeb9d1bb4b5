#include "runtime/io/json_limits.h"

#include "runtime/core/error.h"

namespace moe {

void check_json_depth(std::string_view text, std::string_view where, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth) fail(where, ": JSON nests deeper than ", max_depth, " levels (at byte ", i, ")");
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
}

namespace {

// Cuts a dump to max_chars (not inside a UTF-8 sequence) and says how long it was.
std::string cut(std::string s, std::size_t max_chars) {
  if (s.size() <= max_chars) return s;
  const std::size_t full = s.size();
  s.resize(max_chars);
  // Do not end inside a UTF-8 sequence.
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
  if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
  return str_cat(s, "... (", full, " characters)");
}

}  // namespace

std::string json_excerpt(const nlohmann::json& j, std::size_t max_chars) {
  return cut(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), max_chars);
}
std::string json_excerpt(const nlohmann::ordered_json& j, std::size_t max_chars) {
  return cut(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace), max_chars);
}

}  // namespace moe
