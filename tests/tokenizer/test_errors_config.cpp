// Unsupported and malformed tokenizer.json files fail with a moe::Error naming the file and the
// component; tokenizer_config.json supplies BOS/EOS, add_bos_token/add_eos_token and the chat
// template.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

using nlohmann::json;

json base() {
  return json::parse(R"({"version": "1.0", "added_tokens": [
      {"id": 3, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
      {"id": 4, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
    "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})");
}

// The message of the moe::Error thrown by from_json, or "" when nothing is thrown.
std::string error_of(const std::string& tokenizer_json, const std::string& config = "") {
  try {
    moe::Tokenizer::from_json(tokenizer_json, config, "/models/x/tokenizer.json");
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const json& j, const std::string& part) {
  const std::string msg = error_of(j.dump());
  EXPECT_NE(msg.find("/models/x/tokenizer.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find(part), std::string::npos) << "'" << msg << "' should mention '" << part << "'";
}

TEST(TokenizerErrors, UnsupportedComponentsNameTheirType) {
  json j = base();
  j["model"]["type"] = "Unigram";
  expect_error(j, "model.type 'Unigram' is not supported");
  j = base();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  expect_error(j, "normalizer: normalizer type 'BertNormalizer' is not supported");
  j = base();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Precompiled"}}}}};
  expect_error(j, "normalizer.normalizers[1]: normalizer type 'Precompiled'");
  j = base();
  j["pre_tokenizer"] = {{"type", "Punctuation"}};
  expect_error(j, "pre_tokenizer: pre_tokenizer type 'Punctuation' is not supported");
  j = base();
  j["decoder"] = {{"type", "WordPiece"}};
  expect_error(j, "decoder: decoder type 'WordPiece' is not supported");
  j = base();
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_error(j, "post_processor: post_processor type 'RobertaProcessing' is not supported");
  j = base();
  j["model"]["dropout"] = 0.1;
  expect_error(j, "dropout");
  j = base();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_error(j, "does not compile");
  j = base();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
  expect_error(j, "split behavior 'Sideways'");
}

TEST(TokenizerErrors, MalformedFiles) {
  EXPECT_NE(error_of("{not json").find("/models/x/tokenizer.json: not valid JSON"), std::string::npos);
  json j = base();
  j["model"].erase("vocab");
  expect_error(j, "model (BPE): missing object field 'vocab'");
  j = base();
  j["model"]["merges"] = {"a c"};
  expect_error(j, "merges[0] uses 'c', which is not in the vocab");
  j = base();
  j["model"]["merges"] = {"ab"};
  expect_error(j, "merges[0] 'ab' is not 'a b'");
  j = base();
  j["model"]["merges"] = {{"a", "b", "c"}};
  expect_error(j, "merges[0] must be");
  j = base();
  j["model"]["vocab"]["b"] = "one";
  expect_error(j, "vocab entry 'b' has a bad id");
  j = base();
  j.erase("model");
  expect_error(j, "missing object 'model'");
  j = base();
  j["normalizer"] = {{"type", "Replace"}, {"content", "x"}};
  expect_error(j, "normalizer (Replace): missing object field 'pattern'");
  EXPECT_NE(error_of(base().dump(), "[1, 2").find("/models/x/tokenizer_config.json: not valid JSON"),
            std::string::npos);
}

TEST(TokenizerErrors, LoadNamesTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / "moe_tokenizer_errors_test";
  std::filesystem::create_directories(dir);
  json j = base();
  j["decoder"] = {{"type", "CTC"}};
  std::ofstream(dir / "tokenizer.json") << j.dump();
  try {
    moe::Tokenizer::load(dir);
    ADD_FAILURE() << "expected an error";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "tokenizer.json").string() + ": decoder"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
  EXPECT_THROW(moe::Tokenizer::load(dir), moe::Error);
}

TEST(TokenizerConfig, BosEosAndChatTemplate) {
  const auto tok = moe::Tokenizer::from_json(
      base().dump(),
      R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "chat_template": "{{ x }}"})", "t");
  EXPECT_EQ(tok.bos_token(), "<s>");
  EXPECT_EQ(tok.eos_token(), "</s>");
  EXPECT_EQ(tok.bos_id(), 3);
  EXPECT_EQ(tok.eos_id(), 4);
  EXPECT_EQ(tok.chat_template(), "{{ x }}");
  // No add_bos_token: encode adds nothing.
  EXPECT_EQ(tok.encode("ab", true), (std::vector<int32_t>{2}));

  const auto listed = moe::Tokenizer::from_json(
      base().dump(),
      R"({"bos_token": null, "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})",
      "t");
  EXPECT_EQ(listed.chat_template(), "D");
  EXPECT_EQ(listed.bos_token(), "");
  EXPECT_EQ(listed.bos_id(), std::nullopt);

  const auto none = moe::Tokenizer::from_json(base().dump(), "", "t");
  EXPECT_EQ(none.chat_template(), "");
  EXPECT_EQ(none.eos_id(), std::nullopt);
}

TEST(TokenizerConfig, AddBosEosWithoutPostProcessor) {
  const auto tok = moe::Tokenizer::from_json(
      base().dump(), R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "add_eos_token": true})", "t");
  EXPECT_EQ(tok.encode("ab", true), (std::vector<int32_t>{3, 2, 4}));
  EXPECT_EQ(tok.encode("ab", false), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{3, 2, 4}, true), "ab");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{3, 2, 4}, false), "<s> ab </s>");  // no decoder: joined by spaces

  // A post_processor in tokenizer.json wins over the config flags.
  json j = base();
  j["post_processor"] =
      json::parse(R"({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}},
      {"SpecialToken": {"id": "</s>", "type_id": 0}}], "pair": [], "special_tokens": {"</s>": {"id": "</s>", "ids": [4], "tokens": ["</s>"]}}})");
  const auto templ = moe::Tokenizer::from_json(j.dump(), R"({"bos_token": "<s>", "add_bos_token": true})", "t");
  EXPECT_EQ(templ.encode("ab", true), (std::vector<int32_t>{2, 4}));

  EXPECT_NE(error_of(base().dump(), R"({"bos_token": "<nope>", "add_bos_token": true})").find("add_bos_token"),
            std::string::npos);
}

}  // namespace
