#include "runtime/tokenizer/byte_level.h"

#include "runtime/tokenizer/utf8.h"

namespace moe::tok {

const ByteLevelMap& ByteLevelMap::get() {
  static const ByteLevelMap map = [] {
    ByteLevelMap m;
    m.cp_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const int cp = printable ? b : 256 + n++;
      append_utf8(m.byte_to_utf8[static_cast<size_t>(b)], static_cast<char32_t>(cp));
      m.cp_to_byte[static_cast<size_t>(cp)] = static_cast<int16_t>(b);
    }
    return m;
  }();
  return map;
}

void byte_level_encode(std::string_view text, std::string& out) {
  const auto& m = ByteLevelMap::get();
  out.reserve(out.size() + text.size() * 2);
  for (char c : text) out += m.byte_to_utf8[static_cast<unsigned char>(c)];
}

bool byte_level_decode(std::string_view token, std::string& out) {
  const auto& m = ByteLevelMap::get();
  const size_t start = out.size();
  size_t i = 0;
  while (i < token.size()) {
    const char32_t cp = next_cp(token, i);
    if (cp >= m.cp_to_byte.size() || m.cp_to_byte[cp] < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(m.cp_to_byte[cp]));
  }
  return true;
}

}  // namespace moe::tok
