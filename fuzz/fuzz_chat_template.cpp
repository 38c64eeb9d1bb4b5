// Chat templates (runtime/chat/chat_template.h): parse the input as a template, render it over
// fixed conversations (with and without the generation prompt, tools, a system message).
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.h"
#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

namespace {

const nlohmann::ordered_json& conversation() {
  static const nlohmann::ordered_json c = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hello! What is 2+2?"},
      {"role": "assistant", "content": "4", "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
      {"role": "tool", "content": "{\"result\": 4}"},
      {"role": "user", "content": [{"type": "text", "text": "And 3+3? ünï 😀"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "add", "description": "a + b",
      "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}],
    "add_generation_prompt": true,
    "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false
  })");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const moe::ChatTemplate t = moe::ChatTemplate::parse(std::string(moe::fuzz::as_view(data, size)), "fuzz");
    try {
      (void)t.render(conversation());
    } catch (const moe::Error&) {
    }
    nlohmann::ordered_json plain = conversation();
    plain["add_generation_prompt"] = false;
    plain.erase("tools");
    plain["messages"] = nlohmann::ordered_json::array({plain["messages"][1]});
    (void)t.render(nlohmann::json(plain));
  } catch (const moe::Error&) {
  }
  return 0;
}
