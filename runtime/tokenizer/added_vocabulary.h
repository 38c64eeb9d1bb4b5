// tokenizer.json "added_tokens": matched before the model (leftmost-longest, as tokenizers'
// aho-corasick tries), never split; single_word / lstrip / rstrip / normalized honoured as in
// added_vocabulary.rs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizer/normalizers.h"
#include "runtime/tokenizer/pre_tokenizers.h"

namespace moe::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// One split of the input: an added token (id >= 0) or normalized text for the pre-tokenizer.
struct AddedSplit {
  Piece piece;
  int32_t id = -1;
};

class AddedVocabulary {
 public:
  // `tokens` ids are final. `normalizer` (may be null) normalizes the normalized tokens' patterns.
  void build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // extract_and_normalize: raw-text tokens first, then normalize the rest and match the
  // normalized tokens. Empty splits are dropped.
  void extract_and_normalize(std::string_view text, const Normalizer* normalizer, std::vector<AddedSplit>& out) const;

  const AddedToken* find(int32_t id) const;
  const AddedToken* find(std::string_view content) const;
  bool is_special(int32_t id) const;
  int32_t max_id() const { return max_id_; }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over patterns; terminal nodes name an index into tokens_.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> children;
      int32_t token = -1;
    };
    std::vector<Node> nodes{Node{}};
    bool empty() const { return nodes.size() == 1; }
    void insert(std::string_view pattern, int32_t token);
    // Longest pattern starting at text[pos]: its token index and length, or token -1.
    std::pair<int32_t, size_t> longest_at(std::string_view text, size_t pos) const;
  };
  void split(const Piece& piece, const Trie& trie, std::vector<AddedSplit>& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_, normalized_;
  int32_t max_id_ = -1;
};

}  // namespace moe::tok
