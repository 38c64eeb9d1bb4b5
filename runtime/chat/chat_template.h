// Chat templates: the Jinja templates models ship in tokenizer_config.json ("chat_template"),
// rendered as transformers' apply_chat_template renders them. A small interpreter of the Jinja
// subset the MoE models we target use (Mixtral-Instruct, Qwen2-MoE/Qwen3-MoE, OLMoE-Instruct,
// DeepSeek); anything else is refused at parse time with an error naming the construct and its
// line and column.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace moe {

namespace jinja {
class Template;  // parsed tree (runtime/chat/jinja/)
}

class ChatTemplate {
 public:
  // Throws moe::Error "<name>:<line>:<col>: <what>" for syntax errors and unsupported constructs.
  static ChatTemplate parse(const std::string& source, const std::string& name = "chat_template");

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders with `context` as the template's variables, e.g.
  // {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true,
  //  "bos_token": "<s>", "eos_token": "</s>"}. raise_exception(msg) in the template becomes a
  // moe::Error carrying msg. Undefined variables behave as in jinja2's default Undefined
  // (falsy, render as "", `is defined` false), as transformers uses.
  std::string render(const nlohmann::json& context) const;
  // The same with the context's key order kept: nlohmann::json sorts object keys, so pass an
  // ordered_json when the template serialises dicts (e.g. `tools | tojson`) and order matters.
  std::string render(const nlohmann::ordered_json& context) const;

 private:
  explicit ChatTemplate(std::unique_ptr<jinja::Template> t);
  std::unique_ptr<jinja::Template> template_;
};

}  // namespace moe
