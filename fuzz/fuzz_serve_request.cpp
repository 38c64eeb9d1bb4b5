// Request bodies of `moe serve` (launch/serve/openai_request.h): the input is the HTTP body,
// parsed as /v1/completions, /v1/chat/completions, /tokenize and /detokenize parse it, for a
// served model with a tokenizer (tests/fixtures/tokenizers/sentencepiece_bpe) and a chat
// template. What the server answers as a 4xx is expected: ApiError, moe::Error and
// nlohmann::json::exception (launch/serve/api_server.cpp answer_errors).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.h"
#include "launch/serve/api_error.h"
#include "launch/serve/openai_request.h"
#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

using moe::serve::ServedModel;
using nlohmann::json;

const ServedModel& model() {
  static const moe::Tokenizer tokenizer =
      moe::Tokenizer::load(std::filesystem::path(MOE_FUZZ_FIXTURES) / "tokenizers" / "sentencepiece_bpe");
  static const moe::ChatTemplate chat = moe::ChatTemplate::parse(
      "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
      "{% if add_generation_prompt %}[assistant] {% endif %}");
  static const ServedModel m = [] {
    ServedModel s;
    s.name = "tiny";
    s.aliases = {"/models/tiny"};
    s.context = 256;
    s.vocab_size = tokenizer.vocab_size();
    s.tokenizer = &tokenizer;
    s.chat_template = &chat;
    s.eos_ids = {2};
    return s;
  }();
  return m;
}

void expected_errors(const std::function<void()>& f) {
  try {
    f();
  } catch (const moe::serve::ApiError&) {
  } catch (const nlohmann::json::exception&) {
  } catch (const moe::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ServedModel& m = model();
  json body;
  try {
    body = moe::serve::parse_body(moe::fuzz::as_view(data, size));
  } catch (const moe::serve::ApiError&) {
    return 0;
  } catch (const moe::Error&) {
    return 0;
  }
  expected_errors([&] { (void)moe::serve::parse_completion(body, m); });
  expected_errors([&] { (void)moe::serve::parse_chat(body, m); });
  // /tokenize and /detokenize (launch/serve/api_server.cpp)
  expected_errors([&] {
    moe::serve::check_model(body, m);
    if (body.contains("messages")) {
      (void)moe::serve::render_chat(body["messages"], m, body.value("add_generation_prompt", true));
    } else if (body.contains("prompt") && body["prompt"].is_string()) {
      (void)m.tokenizer->encode(body["prompt"].get<std::string>(), body.value("add_special_tokens", true));
    }
  });
  expected_errors([&] {
    if (!body.contains("tokens") || !body["tokens"].is_array()) return;
    std::vector<int32_t> ids;
    for (const json& t : body["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= m.vocab_size) return;
      ids.push_back(t.get<int32_t>());
    }
    (void)m.tokenizer->decode(ids, body.value("skip_special_tokens", false));
  });
  return 0;
}
