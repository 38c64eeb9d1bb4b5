// tokenizer.json "normalizer": NFC/NFD/NFKC/NFKD, Prepend, Replace, Lowercase, Strip, Sequence.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace moe::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// nullptr for a JSON null. `where` prefixes error messages (file and component path).
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& where);

}  // namespace moe::tok
