// Parsing and validation of OpenAI request bodies: defaults, every parameter's range, the prompt
// forms, chat rendering through a real template, the context check with OpenAI's message, and
// the status of each refusal. Also the nesting guard in front of the JSON parser.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "launch/serve/openai_request.h"
#include "launch/serve/openai_response.h"
#include "launch/serve/server_metrics.h"

namespace moe::serve {
namespace {

using json = nlohmann::json;

const Tokenizer& tokenizer() {
  static const Tokenizer t =
      Tokenizer::load(std::filesystem::path(MOE_TEST_DATA_DIR) / "tokenizers" / "sentencepiece_bpe");
  return t;
}
const ChatTemplate& chat_template() {
  static const ChatTemplate t = ChatTemplate::parse(
      "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
      "{% if add_generation_prompt %}[assistant] {% endif %}");
  return t;
}

ServedModel model() {
  ServedModel m;
  m.name = "tiny";
  m.aliases = {"/models/tiny"};
  m.context = 64;
  m.vocab_size = tokenizer().vocab_size();
  m.tokenizer = &tokenizer();
  m.chat_template = &chat_template();
  m.eos_ids = {2};
  return m;
}

int status_of(const std::function<void()>& f, std::string* message = nullptr, std::string* param = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    if (message) *message = e.what();
    if (param) *param = e.param();
    return e.status();
  }
  return 0;
}

TEST(OpenAiRequest, CompletionDefaultsAreOpenAis) {
  const GenerationRequest r = parse_completion(json{{"prompt", "Hello there"}}, model());
  EXPECT_FALSE(r.chat);
  EXPECT_EQ(r.model, "tiny");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], tokenizer().encode("Hello there", true));
  EXPECT_EQ(r.max_tokens, std::vector<int64_t>{16});
  EXPECT_FLOAT_EQ(r.params.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.params.sampling.top_p, 1.0f);
  EXPECT_EQ(r.params.stop_ids, std::vector<int32_t>{2});
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.seeded);
}

TEST(OpenAiRequest, PromptForms) {
  const ServedModel m = model();
  EXPECT_EQ(parse_completion(json{{"prompt", {5, 6, 7}}}, m).prompts, (std::vector<std::vector<int32_t>>{{5, 6, 7}}));
  EXPECT_EQ(parse_completion(json{{"prompt", {{5, 6}, {7}}}}, m).prompts.size(), 2u);
  EXPECT_EQ(parse_completion(json{{"prompt", {"a", "b"}}}, m).prompts.size(), 2u);
  EXPECT_EQ(status_of([&] { parse_completion(json{{"prompt", json::array()}}, m); }), 400);
  EXPECT_EQ(status_of([&] { parse_completion(json{{"prompt", {"a", 5}}}, m); }), 400);
  EXPECT_EQ(status_of([&] { parse_completion(json{{"prompt", {1, 2, 1000000}}}, m); }), 400);
  EXPECT_EQ(status_of([&] { parse_completion(json{{"prompt", {-1}}}, m); }), 400);
  EXPECT_EQ(status_of([&] { parse_completion(json::object(), m); }), 400);
  EXPECT_EQ(status_of([&] { parse_completion(json{{"prompt", 5}}, m); }), 400);
}

TEST(OpenAiRequest, EveryParameterIsRangeChecked) {
  const ServedModel m = model();
  auto st = [&](json extra) {
    json body = {{"prompt", "hi"}};
    body.update(extra);
    std::string param;
    const int s = status_of([&] { parse_completion(body, m); }, nullptr, &param);
    return std::make_pair(s, param);
  };
  EXPECT_EQ(st({{"temperature", 2.5}}), std::make_pair(400, std::string("temperature")));
  EXPECT_EQ(st({{"temperature", "hot"}}).first, 400);
  EXPECT_EQ(st({{"top_p", 0}}).first, 400);
  EXPECT_EQ(st({{"top_p", 1.5}}).first, 400);
  EXPECT_EQ(st({{"top_k", -2}}).first, 400);
  EXPECT_EQ(st({{"max_tokens", 0}}).first, 400);
  EXPECT_EQ(st({{"max_tokens", 1.5}}).first, 400);
  EXPECT_EQ(st({{"n", 0}}).first, 400);
  EXPECT_EQ(st({{"n", 9}}).first, 400);
  EXPECT_EQ(st({{"presence_penalty", 3}}).first, 400);
  EXPECT_EQ(st({{"frequency_penalty", -3}}).first, 400);
  EXPECT_EQ(st({{"stop", ""}}).first, 400);
  EXPECT_EQ(st({{"stop", {1}}}).first, 400);
  EXPECT_EQ(st({{"logit_bias", {{"abc", 1}}}}).first, 400);
  EXPECT_EQ(st({{"logit_bias", {{"5", 101}}}}).first, 400);
  EXPECT_EQ(st({{"stream", "yes"}}).first, 400);
  EXPECT_EQ(st({{"stream_options", {{"include_usage", true}}}}).first, 400) << "stream_options without stream";
  EXPECT_EQ(st({{"logprobs", 2}}).first, 400);
  EXPECT_EQ(st({{"best_of", 3}}).first, 400);
  EXPECT_EQ(st({{"suffix", "x"}}).first, 400);
  EXPECT_EQ(st({{"model", "other"}}), std::make_pair(404, std::string("model")));
  EXPECT_EQ(st({{"model", "/models/tiny"}}).first, 0) << "an alias";
  EXPECT_EQ(st({{"temperature", 0},
                {"top_k", 40},
                {"top_p", 0.5},
                {"seed", -3},
                {"stop", {"x", "y"}},
                {"logit_bias", {{"5", -100}}},
                {"n", 2},
                {"stream", true},
                {"stream_options", {{"include_usage", true}}},
                {"ignore_eos", true},
                {"logprobs", nullptr},
                {"user", "me"}})
                .first,
            0);
  const GenerationRequest r = parse_completion(json{{"prompt", "hi"},
                                                    {"seed", 11},
                                                    {"top_k", -1},
                                                    {"ignore_eos", true},
                                                    {"stop", "x"},
                                                    {"logit_bias", {{"5", 2.5}}}},
                                               m);
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(r.params.sampling.seed, 11u);
  EXPECT_EQ(r.params.sampling.top_k, 0);
  EXPECT_TRUE(r.params.stop_ids.empty());
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"x"});
  ASSERT_EQ(r.params.logit_bias.size(), 1u);
  EXPECT_EQ(r.params.logit_bias[0].first, 5);
}

TEST(OpenAiRequest, TheContextCheckSaysWhatDoesNotFit) {
  const ServedModel m = model();
  std::string message;
  EXPECT_EQ(status_of([&] { parse_completion(json{{"prompt", {1, 2, 3}}, {"max_tokens", 62}}, m); }, &message), 400);
  EXPECT_NE(message.find("maximum context length is 64 tokens"), std::string::npos) << message;
  EXPECT_NE(message.find("65 tokens (3 in the prompt, 62 in the completion)"), std::string::npos) << message;
  EXPECT_EQ(parse_completion(json{{"prompt", std::vector<int>(60, 1)}}, m).max_tokens, std::vector<int64_t>{4})
      << "the default is cut to what the context leaves";
  EXPECT_EQ(status_of([&] { parse_completion(json{{"prompt", std::vector<int>(64, 1)}}, m); }), 400);
}

TEST(OpenAiRequest, ChatRendersTheTemplate) {
  const ServedModel m = model();
  const json body = {
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}},
        {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Hi"}}, {{"type", "text"}, {"text", "there"}}}}}}}};
  const GenerationRequest r = parse_chat(body, m);
  EXPECT_TRUE(r.chat);
  const std::string text = "<s>[system] Be brief.\n[user] Hi\nthere\n[assistant] ";
  EXPECT_EQ(r.prompts.at(0), tokenizer().encode(text, false));
  EXPECT_EQ(r.max_tokens.at(0), 64 - static_cast<int64_t>(r.prompts[0].size()))
      << "chat default: the rest of the context";
  EXPECT_EQ(parse_chat(json{{"messages", body["messages"]}, {"max_completion_tokens", 5}}, m).max_tokens.at(0), 5);
  EXPECT_EQ(status_of([&] { parse_chat(json{{"messages", json::array()}}, m); }), 400);
  EXPECT_EQ(status_of([&] { parse_chat(json{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, m); }), 400);
  EXPECT_EQ(status_of([&] { parse_chat(json{{"messages", {{{"role", "user"}}}}}, m); }), 400);
  EXPECT_EQ(status_of([&] {
              parse_chat(json{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}, m);
            }),
            400);
  EXPECT_EQ(status_of([&] {
              parse_chat(json{{"messages", body["messages"]}, {"tools", {{{"type", "function"}}}}}, m);
            }),
            400);
  ServedModel no_template = m;
  no_template.chat_template = nullptr;
  EXPECT_EQ(status_of([&] { parse_chat(body, no_template); }), 400);
}

TEST(OpenAiRequest, BodyParsing) {
  EXPECT_EQ(parse_body(R"({"a": [1, {"b": "[[["}]})")["a"][1]["b"], "[[[");
  EXPECT_EQ(status_of([] { parse_body("{\"a\": "); }), 400);
  EXPECT_EQ(status_of([] { parse_body("[1]"); }), 400);
  EXPECT_EQ(status_of([] { parse_body(std::string(200000, '[')); }), 400);
  EXPECT_EQ(status_of([] { parse_body(""); }), 400);
}

TEST(OpenAiResponse, Shapes) {
  const ResponseHead h = new_head("cmpl-", "tiny");
  EXPECT_EQ(h.id.size(), 5u + 24u);
  const auto body = completion_body(h, {Choice{"abc", "stop", {5, 6}, true}}, {3, 4});
  EXPECT_EQ(body["choices"][0]["token_ids"], nlohmann::ordered_json({5, 6}));
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["usage"]["total_tokens"], 7);
  const auto chunk = chat_chunk(h, 0, true, "", std::nullopt, true);
  EXPECT_EQ(chunk["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(chunk["usage"].is_null());
  EXPECT_EQ(sse_event(usage_chunk(h, true, {1, 2})).rfind("data: {", 0), 0u);
}

TEST(ServerMetrics, HistogramsAreCumulative) {
  Histogram h({0.1, 1.0});
  for (const double v : {0.05, 0.1, 0.5, 2.0}) h.observe(v);
  std::string out;
  h.write(out, "x", "help");
  EXPECT_NE(out.find("x_bucket{le=\"0.10000000000000001\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"1\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count 4\n"), std::string::npos);
}

}  // namespace
}  // namespace moe::serve
