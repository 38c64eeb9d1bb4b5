// OpenAI-compatible response bodies: text_completion and chat.completion objects, their stream
// chunks (server-sent events ending with `data: [DONE]`), usage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::serve {

struct ResponseHead {
  std::string id;       // cmpl-... / chatcmpl-...
  int64_t created = 0;  // unix seconds
  std::string model;
};
// A fresh head: `prefix` plus 24 random hex digits, the current time.
ResponseHead new_head(const char* prefix, const std::string& model);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};
nlohmann::ordered_json usage_json(const Usage& u);

struct Choice {
  std::string text;
  std::string finish_reason;       // "stop" | "length"
  std::vector<int32_t> token_ids;  // with return_token_ids
  bool with_token_ids = false;
};

nlohmann::ordered_json completion_body(const ResponseHead& h, const std::vector<Choice>& choices, const Usage& u);
nlohmann::ordered_json chat_body(const ResponseHead& h, const std::vector<Choice>& choices, const Usage& u);

// One stream chunk for choice `index`: new text, or the choice's end (finish_reason set, text "").
// Chat chunks carry a delta; `first` adds the assistant role to it. With include_usage every
// chunk has "usage": null, and usage_chunk() ends the stream with the totals.
// `token_ids` (non-null: the request asked return_token_ids) adds the chunk's generated ids.
nlohmann::ordered_json completion_chunk(const ResponseHead& h, int index, const std::string& text,
                                        const std::optional<std::string>& finish, bool include_usage,
                                        const std::vector<int32_t>* token_ids = nullptr);
nlohmann::ordered_json chat_chunk(const ResponseHead& h, int index, bool first, const std::string& text,
                                  const std::optional<std::string>& finish, bool include_usage,
                                  const std::vector<int32_t>* token_ids = nullptr);
nlohmann::ordered_json usage_chunk(const ResponseHead& h, bool chat, const Usage& u);

// "data: <json>\n\n"
std::string sse_event(const nlohmann::ordered_json& j);
std::string sse_event(const nlohmann::json& j);
inline const char* sse_done() {
  return "data: [DONE]\n\n";
}

}  // namespace moe::serve
