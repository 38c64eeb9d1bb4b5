// OpenAI-compatible request bodies (/v1/completions, /v1/chat/completions, /tokenize,
// /detokenize) parsed and validated into what the batch engine takes. Every malformed body or
// parameter is an ApiError with status 400 naming the parameter (404 for an unknown model), raised
// before anything is queued. Pure functions of the body and the served model's facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "launch/serve/api_error.h"
#include "runtime/batch/request.h"
#include "runtime/chat/chat_template.h"
#include "runtime/tokenizer/tokenizer.h"

namespace moe::serve {

// What the parser needs to know about the served model.
struct ServedModel {
  std::string name;                  // what /v1/models lists and requests must name (or omit)
  std::vector<std::string> aliases;  // also accepted in "model" (e.g. the --model path as given)
  int64_t context = 0;               // tokens per sequence, prompt + completion
  int64_t vocab_size = 0;
  const Tokenizer* tokenizer = nullptr;         // null: prompts must be token ids; no text out
  const ChatTemplate* chat_template = nullptr;  // null: no /v1/chat/completions
  std::vector<int32_t> eos_ids;                 // stop ids unless ignore_eos
  int max_n = 8;                                // the most choices (n x prompts) one request may ask
};

// Parses a request body into JSON, refusing what is not an object and nesting deeper than
// `max_depth` (nlohmann's parser recurses: a deep body must not reach it).
nlohmann::json parse_body(std::string_view body, int max_depth = 64);

struct GenerationRequest {
  bool chat = false;
  std::string model;  // the served name
  bool stream = false;
  bool include_usage = false;                 // stream_options.include_usage
  bool echo = false;                          // completions: the prompt's text before the completion
  bool return_token_ids = false;              // vLLM's extension: choices carry their generated token ids
  int n = 1;                                  // choices per prompt
  std::vector<std::vector<int32_t>> prompts;  // token ids; chat: exactly one (the rendered conversation)
  std::vector<std::string> prompt_texts;      // echo: each prompt as text
  std::vector<int64_t> max_tokens;            // per prompt (defaults depend on its length)
  RequestParams params;                       // everything but the prompt, max_tokens and the per-choice seed
  bool seeded = false;                        // params.sampling.seed came from the request
};

// /v1/completions and /v1/chat/completions bodies. Defaults as OpenAI's: temperature 1, top_p 1,
// max_tokens 16 for completions and the rest of the context for chat.
GenerationRequest parse_completion(const nlohmann::json& body, const ServedModel& model);
GenerationRequest parse_chat(const nlohmann::json& body, const ServedModel& model);

// The conversation of a chat request rendered through the model's template (generation prompt
// added) and encoded, as transformers' apply_chat_template(tokenize=True) does.
std::vector<int32_t> render_chat(const nlohmann::json& messages, const ServedModel& model, bool add_generation_prompt);

// The "model" field: absent, or the served name (or an alias). 404 otherwise.
void check_model(const nlohmann::json& body, const ServedModel& model);

}  // namespace moe::serve
