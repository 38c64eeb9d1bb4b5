// Checked access to tokenizer.json fields, and the {"String"|"Regex"} patterns it uses.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/regex.h"

namespace moe::tok {

// The largest token id accepted (vocab, added tokens, special tokens): ids index dense
// tables, and real vocabularies stay below 2^18.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// How deep Sequence components (normalizers, pre_tokenizers, decoders, post_processors) may
// nest; real tokenizers nest one or two levels.
inline constexpr int kMaxSequenceNesting = 16;

// Throws "<where>: Sequence nested deeper than kMaxSequenceNesting levels" past the limit.
void check_sequence_nesting(int depth, const std::string& where);

// j[key] when j is an object holding key, else nullptr.
const nlohmann::json* child(const nlohmann::json& j, const char* key);

// j["type"] as a string; throws naming `where` when absent.
std::string get_type(const nlohmann::json& j, const std::string& where);
std::string get_string(const nlohmann::json& j, const char* key, const std::string& where);
std::string get_string_or(const nlohmann::json& j, const char* key, const std::string& dflt, const std::string& where);
bool get_bool(const nlohmann::json& j, const char* key, bool dflt, const std::string& where);
int64_t get_int(const nlohmann::json& j, const char* key, int64_t dflt, const std::string& where);
const nlohmann::json& get_array(const nlohmann::json& j, const char* key, const std::string& where);

// A literal string or a regex, as in {"pattern": {"String": " "}} / {"pattern": {"Regex": "..."}}.
class Pattern {
 public:
  static Pattern from_json(const nlohmann::json& component, const std::string& where);
  // Non-overlapping non-empty matches, left to right.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::optional<Regex> regex_;
};

}  // namespace moe::tok
