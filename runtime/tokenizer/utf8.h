// UTF-8 helpers with Rust semantics (tokenizers is written in Rust): decoding, encoding,
// String::from_utf8_lossy and the char predicates the pipeline needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe::tok {

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i.
inline char32_t next_cp(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int n = b0 >= 0xF0 ? 3 : b0 >= 0xE0 ? 2 : 1;
  char32_t cp = b0 & (0x3F >> n);
  for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
  i += static_cast<size_t>(n) + 1;
  return cp;
}

// Byte length of the UTF-8 sequence that starts with lead byte b.
inline size_t cp_len(unsigned char b) {
  return b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
}

void append_utf8(std::string& out, char32_t cp);

// Length of the longest valid UTF-8 prefix of s.
size_t valid_utf8_prefix(std::string_view s);
inline bool is_valid_utf8(std::string_view s) {
  return valid_utf8_prefix(s) == s.size();
}

// As Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string from_utf8_lossy(std::string_view bytes);

bool is_whitespace(char32_t c);             // Rust char::is_whitespace (White_Space property)
bool is_numeric(char32_t c);                // Rust char::is_numeric (Nd, Nl, No)
bool is_word_char(char32_t c);              // regex crate \w (Unicode)
std::string lowercase(std::string_view s);  // Rust str::to_lowercase

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

}  // namespace moe::tok
