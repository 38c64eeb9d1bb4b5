// Guards for JSON read from files a user hands the program (config.json, tokenizer.json,
// safetensors headers, packed-store manifests): a nesting limit checked before parsing, since
// nlohmann::json copies, compares and dumps recursively (a deep document overflows the stack),
// and a bounded excerpt for error messages.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace moe {

// Real files nest a few levels (tokenizer.json about 6, JSON schemas of tools about 20).
inline constexpr std::size_t kMaxJsonDepth = 512;

// Throws moe::Error "<where>: JSON nests deeper than <max_depth> levels (at byte N)" when an
// array or object opens at depth max_depth + 1. Scans `text` once, outside string literals;
// says nothing about whether the rest is valid JSON (the parser does that).
void check_json_depth(std::string_view text, std::string_view where, std::size_t max_depth = kMaxJsonDepth);

// j.dump() cut to at most `max_chars` characters (then "..." and the full length), for error
// messages. `j` must already be within kMaxJsonDepth (dump recurses).
std::string json_excerpt(const nlohmann::json& j, std::size_t max_chars = 160);
std::string json_excerpt(const nlohmann::ordered_json& j, std::size_t max_chars = 160);

}  // namespace moe
