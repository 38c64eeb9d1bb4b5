// tokenizer.json "post_processor": TemplateProcessing (single template), ByteLevel (no effect
// on ids), Sequence of those.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::tok {

class PostProcessor {
 public:
  // nullptr for a JSON null.
  static std::unique_ptr<PostProcessor> from_json(const nlohmann::json& j, const std::string& where);
  // Applies the single-sequence templates in order (used when add_special_tokens).
  void process(std::vector<int32_t>& ids) const;
  // A template built from plain ids (tokenizer_config.json add_bos_token / add_eos_token).
  static std::unique_ptr<PostProcessor> bos_eos(std::vector<int32_t> bos, std::vector<int32_t> eos);

 private:
  struct Item {
    bool sequence = false;     // the input ids ("A")
    std::vector<int32_t> ids;  // a special token's ids
  };
  void parse(const nlohmann::json& j, const std::string& where, int depth);
  std::vector<std::vector<Item>> templates_;
  // How many times the templates, applied in order, copy the input; refused above
  // kMaxInputCopies (a Sequence of templates each repeating $A grows the ids exponentially).
  uint64_t input_copies_ = 1;
};

}  // namespace moe::tok
