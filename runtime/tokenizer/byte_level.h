// GPT-2's reversible map between bytes and printable code points (a space becomes 'Ġ').
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe::tok {

struct ByteLevelMap {
  std::array<std::string, 256> byte_to_utf8;  // byte -> UTF-8 of its code point
  std::array<int16_t, 512> cp_to_byte;        // code point -> byte, -1 when none
  static const ByteLevelMap& get();
};

// Appends the byte-level form of `text` to `out`.
void byte_level_encode(std::string_view text, std::string& out);

// Maps the characters of `token` back to bytes and appends them; returns false (appending
// nothing) when some character is outside the map.
bool byte_level_decode(std::string_view token, std::string& out);

}  // namespace moe::tok
