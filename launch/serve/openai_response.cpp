#include "launch/serve/openai_response.h"

#include <chrono>
#include <random>

namespace moe::serve {

using ojson = nlohmann::ordered_json;

ResponseHead new_head(const char* prefix, const std::string& model) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {id, std::chrono::duration_cast<std::chrono::seconds>(now).count(), model};
}

ojson usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

ojson completion_body(const ResponseHead& h, const std::vector<Choice>& choices, const Usage& u) {
  ojson c = ojson::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    c.push_back(
        {{"index", i}, {"text", choices[i].text}, {"logprobs", nullptr}, {"finish_reason", choices[i].finish_reason}});
    if (choices[i].with_token_ids) c.back()["token_ids"] = choices[i].token_ids;
  }
  return {{"id", h.id},       {"object", "text_completion"}, {"created", h.created},
          {"model", h.model}, {"choices", std::move(c)},     {"usage", usage_json(u)}};
}

ojson chat_body(const ResponseHead& h, const std::vector<Choice>& choices, const Usage& u) {
  ojson c = ojson::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    c.push_back({{"index", i},
                 {"message", {{"role", "assistant"}, {"content", choices[i].text}}},
                 {"logprobs", nullptr},
                 {"finish_reason", choices[i].finish_reason}});
    if (choices[i].with_token_ids) c.back()["token_ids"] = choices[i].token_ids;
  }
  return {{"id", h.id},       {"object", "chat.completion"}, {"created", h.created},
          {"model", h.model}, {"choices", std::move(c)},     {"usage", usage_json(u)}};
}

namespace {
ojson finish_value(const std::optional<std::string>& f) {
  return f ? ojson(*f) : ojson(nullptr);
}
}  // namespace

ojson completion_chunk(const ResponseHead& h, int index, const std::string& text,
                       const std::optional<std::string>& finish, bool include_usage,
                       const std::vector<int32_t>* token_ids) {
  ojson j = {
      {"id", h.id},
      {"object", "text_completion"},
      {"created", h.created},
      {"model", h.model},
      {"choices",
       ojson::array(
           {{{"index", index}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish_value(finish)}}})}};
  if (token_ids) j["choices"][0]["token_ids"] = *token_ids;
  if (include_usage) j["usage"] = nullptr;
  return j;
}

ojson chat_chunk(const ResponseHead& h, int index, bool first, const std::string& text,
                 const std::optional<std::string>& finish, bool include_usage, const std::vector<int32_t>* token_ids) {
  ojson delta = ojson::object();
  if (first) delta["role"] = "assistant";
  if (!finish || !text.empty() || first) delta["content"] = text;
  ojson j = {{"id", h.id},
             {"object", "chat.completion.chunk"},
             {"created", h.created},
             {"model", h.model},
             {"choices", ojson::array({{{"index", index},
                                        {"delta", std::move(delta)},
                                        {"logprobs", nullptr},
                                        {"finish_reason", finish_value(finish)}}})}};
  if (token_ids) j["choices"][0]["token_ids"] = *token_ids;
  if (include_usage) j["usage"] = nullptr;
  return j;
}

ojson usage_chunk(const ResponseHead& h, bool chat, const Usage& u) {
  return {{"id", h.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", ojson::array()},
          {"usage", usage_json(u)}};
}

std::string sse_event(const ojson& j) {
  return "data: " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}
std::string sse_event(const nlohmann::json& j) {
  return "data: " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

}  // namespace moe::serve
