// tokenizer.json "model" of type BPE: vocab, merges (both JSON forms), unk/fuse_unk,
// byte_fallback, ignore_merges, continuing_subword_prefix, end_of_word_suffix.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class Bpe {
 public:
  Bpe(const nlohmann::json& model, const std::string& where);

  // Appends the ids of one pre-token (word.rs merge_all order, cached per word).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr when unknown
  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  int32_t max_id() const { return max_id_; }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };
  StringMap vocab_;
  std::vector<const std::string*> vocab_r_;  // id -> token (nullptr for holes)
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  std::string unk_name_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string prefix_, suffix_;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> ids, -1 when absent
  int32_t max_id_ = -1;

  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace moe::tok
