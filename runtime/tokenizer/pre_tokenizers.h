// tokenizer.json "pre_tokenizer": Split, ByteLevel, Metaspace, Digits, WhitespaceSplit, Sequence.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::tok {

// One split of the input. `first` marks a split that starts at offset 0 of the original text
// (Metaspace's prepend_scheme "first" looks at it).
struct Piece {
  std::string text;
  bool first = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their splits (empty splits dropped). `scratch` is reused storage.
  virtual void pre_tokenize(std::vector<Piece>& pieces, std::vector<Piece>& scratch) const = 0;
};

// nullptr for a JSON null. `where` prefixes error messages.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& where);

}  // namespace moe::tok
