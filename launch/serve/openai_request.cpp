#include "launch/serve/openai_request.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/core/error.h"

namespace moe::serve {
namespace {

using json = nlohmann::json;

// body[key] unless absent or null.
const json* field(const json& body, const char* key) {
  const auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

bool get_bool(const json& body, const char* key, bool dflt) {
  const json* v = field(body, key);
  if (!v) return dflt;
  if (!v->is_boolean()) bad_request(key, std::string("'") + key + "' must be a boolean");
  return v->get<bool>();
}

double get_number(const json& body, const char* key, double dflt, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return dflt;
  if (!v->is_number()) bad_request(key, std::string("'") + key + "' must be a number");
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad_request(key, str_cat("'", key, "' must be between ", lo, " and ", hi, ", got ", x));
  return x;
}

int64_t as_int(const json& v, const char* key) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      bad_request(key, str_cat("'", key, "' is out of range"));
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  bad_request(key, std::string("'") + key + "' must be an integer");
}

std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  const int64_t x = as_int(*v, key);
  if (x < lo || x > hi) bad_request(key, str_cat("'", key, "' must be between ", lo, " and ", hi, ", got ", x));
  return x;
}

std::vector<int32_t> token_ids(const json& arr, const ServedModel& m, const char* param) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  for (const json& v : arr) {
    if (!v.is_number_integer()) bad_request(param, str_cat("'", param, "' token ids must be integers"));
    const int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                           ? std::numeric_limits<int64_t>::max()
                           : v.get<int64_t>();
    if (id < 0 || id >= m.vocab_size)
      bad_request(param, str_cat("token id ", id, " is outside the vocabulary [0, ", m.vocab_size, ")"));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

const Tokenizer& need_tokenizer(const ServedModel& m, const char* param, const char* what) {
  if (!m.tokenizer) bad_request(param, str_cat(what, " needs the model's tokenizer.json, which ", m.name, " lacks"));
  return *m.tokenizer;
}

// Refuses features we do not implement rather than silently ignoring them.
void refuse_unsupported(const json& body, bool chat) {
  if (const json* v = field(body, "logprobs")) {
    const bool wanted = v->is_boolean() ? v->get<bool>() : !(v->is_number_integer() && v->get<int64_t>() == 0);
    if (wanted) throw ApiError(400, "logprobs are not supported by this server", "logprobs");
  }
  if (field(body, "top_logprobs")) throw ApiError(400, "top_logprobs are not supported", "top_logprobs");
  if (const json* v = field(body, "best_of"))
    if (!(v->is_number_integer() && v->get<int64_t>() == 1)) throw ApiError(400, "best_of is not supported", "best_of");
  if (const json* v = field(body, "suffix"))
    if (!(v->is_string() && v->get<std::string>().empty())) throw ApiError(400, "suffix is not supported", "suffix");
  if (chat) {
    for (const char* key : {"tools", "functions"})
      if (const json* v = field(body, key))
        if (!(v->is_array() && v->empty())) throw ApiError(400, "tool calling is not supported by this server", key);
    if (const json* v = field(body, "response_format"))
      if (!(v->is_object() && v->value("type", "") == "text"))
        throw ApiError(400, "only response_format {\"type\": \"text\"} is supported", "response_format");
  }
}

// The parameters both endpoints share.
void parse_common(const json& body, const ServedModel& m, GenerationRequest& r) {
  check_model(body, m);
  r.model = m.name;
  refuse_unsupported(body, r.chat);
  r.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad_request("stream_options", "'stream_options' must be an object");
    if (!r.stream) bad_request("stream_options", "'stream_options' is only allowed when 'stream' is true");
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  r.n = static_cast<int>(get_int(body, "n", 1, m.max_n).value_or(1));
  RequestParams& p = r.params;
  p.sampling.temperature = static_cast<float>(get_number(body, "temperature", 1.0, 0.0, 2.0));
  p.sampling.top_p = static_cast<float>(get_number(body, "top_p", 1.0, 0.0, 1.0));
  if (p.sampling.top_p <= 0.0f) bad_request("top_p", "'top_p' must be greater than 0");
  const int64_t top_k = get_int(body, "top_k", -1, INT32_MAX).value_or(-1);
  p.sampling.top_k = top_k < 0 ? 0 : top_k;
  if (const json* v = field(body, "seed")) {
    p.sampling.seed = static_cast<uint64_t>(as_int(*v, "seed"));
    r.seeded = true;
  }
  p.presence_penalty = static_cast<float>(get_number(body, "presence_penalty", 0.0, -2.0, 2.0));
  p.frequency_penalty = static_cast<float>(get_number(body, "frequency_penalty", 0.0, -2.0, 2.0));
  if (const json* lb = field(body, "logit_bias")) {
    if (!lb->is_object()) bad_request("logit_bias", "'logit_bias' must be an object of token id to bias");
    for (const auto& [key, value] : lb->items()) {
      size_t used = 0;
      int64_t id = -1;
      try {
        id = std::stoll(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != key.size() || id < 0 || id >= m.vocab_size)
        bad_request("logit_bias", str_cat("logit_bias key '", key, "' is not a token id in [0, ", m.vocab_size, ")"));
      if (!value.is_number() || !std::isfinite(value.get<double>()) || std::abs(value.get<double>()) > 100)
        bad_request("logit_bias", str_cat("logit_bias of token ", key, " must be a number in [-100, 100]"));
      p.logit_bias.emplace_back(static_cast<int32_t>(id), value.get<float>());
    }
  }
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 16) bad_request("stop", "at most 16 stop strings");
      for (const json& s : *stop) {
        if (!s.is_string()) bad_request("stop", "'stop' must be a string or an array of strings");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      bad_request("stop", "'stop' must be a string or an array of strings");
    }
    for (const std::string& s : p.stop)
      if (s.empty()) bad_request("stop", "stop strings must not be empty");
    if (!p.stop.empty()) need_tokenizer(m, "stop", "'stop'");
  }
  if (!get_bool(body, "ignore_eos", false)) p.stop_ids = m.eos_ids;
  p.skip_special_tokens = get_bool(body, "skip_special_tokens", true);
  r.return_token_ids = get_bool(body, "return_token_ids", false);
  (void)get_bool(body, "echo", false);  // type-checked here, used by completions
  if (const json* u = field(body, "user"))
    if (!u->is_string()) bad_request("user", "'user' must be a string");
}

// max_tokens against the context: OpenAI's message for a request that does not fit.
int64_t checked_max_tokens(std::optional<int64_t> asked, int64_t dflt, int64_t prompt_len, const ServedModel& m,
                           const char* param) {
  if (prompt_len >= m.context)
    throw ApiError(400,
                   str_cat("This model's maximum context length is ", m.context, " tokens. However, your prompt is ",
                           prompt_len, " tokens. Please reduce the length of the prompt."),
                   param, "context_length_exceeded");
  const int64_t n = asked.value_or(std::min(dflt, m.context - prompt_len));
  if (prompt_len + n > m.context)
    throw ApiError(400,
                   str_cat("This model's maximum context length is ", m.context, " tokens. However, you requested ",
                           prompt_len + n, " tokens (", prompt_len, " in the prompt, ", n,
                           " in the completion). Please reduce the length of the prompt or completion."),
                   param, "context_length_exceeded");
  return n;
}

}  // namespace

nlohmann::json parse_body(std::string_view body, int max_depth) {
  // Nesting depth outside strings, before the recursive parser sees it.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) throw ApiError(400, str_cat("the JSON body nests deeper than ", max_depth, " levels"));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw ApiError(400,
                   "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                   "HTTP library correctly. The OpenAI API expects a JSON payload.)");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

void check_model(const nlohmann::json& body, const ServedModel& m) {
  const json* v = field(body, "model");
  if (!v) return;
  if (!v->is_string()) bad_request("model", "'model' must be a string");
  const std::string name = v->get<std::string>();
  if (name == m.name || std::find(m.aliases.begin(), m.aliases.end(), name) != m.aliases.end()) return;
  throw ApiError(404, str_cat("The model `", name, "` does not exist. This server serves `", m.name, "`."), "model",
                 "model_not_found");
}

GenerationRequest parse_completion(const nlohmann::json& body, const ServedModel& m) {
  GenerationRequest r;
  r.chat = false;
  parse_common(body, m, r);
  r.echo = get_bool(body, "echo", false);
  const json* prompt = field(body, "prompt");
  if (!prompt) bad_request("prompt", "'prompt' is required");
  auto text_prompt = [&](const std::string& s) {
    r.prompts.push_back(need_tokenizer(m, "prompt", "a text prompt").encode(s, /*add_special_tokens=*/true));
    r.prompt_texts.push_back(s);
  };
  if (prompt->is_string()) {
    text_prompt(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty()) {
    const json& first = prompt->front();
    if (first.is_string()) {
      for (const json& p : *prompt) {
        if (!p.is_string()) bad_request("prompt", "a prompt array must hold only strings, or only token ids");
        text_prompt(p.get<std::string>());
      }
    } else if (first.is_number()) {
      r.prompts.push_back(token_ids(*prompt, m, "prompt"));
    } else if (first.is_array()) {
      for (const json& p : *prompt) {
        if (!p.is_array()) bad_request("prompt", "a prompt array must hold only arrays of token ids");
        r.prompts.push_back(token_ids(p, m, "prompt"));
      }
    } else {
      bad_request("prompt", "'prompt' must be a string, an array of strings, or token ids");
    }
  } else {
    bad_request("prompt", "'prompt' must be a non-empty string, array of strings, or token ids");
  }
  if (r.prompts.size() * static_cast<size_t>(r.n) > static_cast<size_t>(m.max_n))
    bad_request("n", str_cat(r.prompts.size(), " prompts x n ", r.n, " choices is more than the ", m.max_n,
                             " one request may ask for"));
  if (r.echo && r.prompt_texts.empty() && m.tokenizer)
    for (const auto& ids : r.prompts) r.prompt_texts.push_back(m.tokenizer->decode(ids, false));
  const std::optional<int64_t> asked = get_int(body, "max_tokens", 1, INT32_MAX);
  for (const auto& ids : r.prompts) {
    if (ids.empty()) bad_request("prompt", "the prompt has no tokens");
    r.max_tokens.push_back(checked_max_tokens(asked, 16, static_cast<int64_t>(ids.size()), m, "max_tokens"));
  }
  return r;
}

std::vector<int32_t> render_chat(const nlohmann::json& messages, const ServedModel& m, bool add_generation_prompt) {
  const Tokenizer& tok = need_tokenizer(m, "messages", "chat");
  if (!m.chat_template)
    bad_request("messages", str_cat("the model ", m.name,
                                    " has no chat_template in tokenizer_config.json; use "
                                    "/v1/completions"));
  if (!messages.is_array() || messages.empty()) bad_request("messages", "'messages' must be a non-empty array");
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& msg = messages[i];
    const std::string where = str_cat("messages[", i, "]");
    if (!msg.is_object()) bad_request("messages", where + " must be an object");
    const json* role = field(msg, "role");
    if (!role || !role->is_string()) bad_request("messages", where + ".role must be a string");
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "developer")
      bad_request("messages", str_cat(where, ".role '", r, "' is not one of system, developer, user, assistant, tool"));
    std::string content;
    if (const json* c = field(msg, "content")) {
      if (c->is_string()) {
        content = c->get<std::string>();
      } else if (c->is_array()) {
        for (size_t k = 0; k < c->size(); ++k) {
          const json& part = (*c)[k];
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
              !part["text"].is_string())
            bad_request("messages", str_cat(where, ".content[", k,
                                            "]: only {\"type\": \"text\", \"text\": ...} parts "
                                            "are supported"));
          if (!content.empty()) content += "\n";
          content += part["text"].get<std::string>();
        }
      } else {
        bad_request("messages", where + ".content must be a string or an array of text parts");
      }
    } else if (r != "assistant") {
      bad_request("messages", where + ".content is required");
    }
    nlohmann::ordered_json out = {{"role", r}, {"content", content}};
    if (const json* name = field(msg, "name"))
      if (name->is_string()) out["name"] = name->get<std::string>();
    msgs.push_back(std::move(out));
  }
  const nlohmann::ordered_json context = {{"messages", msgs},
                                          {"add_generation_prompt", add_generation_prompt},
                                          {"bos_token", tok.bos_token()},
                                          {"eos_token", tok.eos_token()}};
  std::string text;
  try {
    text = m.chat_template->render(context);
  } catch (const Error& e) {
    bad_request("messages", str_cat("the chat template refused the conversation: ", e.what()));
  }
  return tok.encode(text, /*add_special_tokens=*/false);
}

GenerationRequest parse_chat(const nlohmann::json& body, const ServedModel& m) {
  GenerationRequest r;
  r.chat = true;
  parse_common(body, m, r);
  if (field(body, "echo")) bad_request("echo", "'echo' is a /v1/completions parameter");
  const json* messages = field(body, "messages");
  if (!messages) bad_request("messages", "'messages' is required");
  r.prompts.push_back(render_chat(*messages, m, true));
  if (r.prompts.front().empty()) bad_request("messages", "the conversation renders to no tokens");
  std::optional<int64_t> asked = get_int(body, "max_completion_tokens", 1, INT32_MAX);
  const char* param = "max_completion_tokens";
  if (!asked) {
    asked = get_int(body, "max_tokens", 1, INT32_MAX);
    param = "max_tokens";
  }
  const auto len = static_cast<int64_t>(r.prompts.front().size());
  r.max_tokens.push_back(checked_max_tokens(asked, m.context, len, m, param));
  return r;
}

}  // namespace moe::serve
