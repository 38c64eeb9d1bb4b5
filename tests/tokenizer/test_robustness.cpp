// Hostile tokenizer.json files (tests/fixtures/robustness/tokenizer-*.json; issue 16): each ends
// in one moe::Error naming the file, never in undefined behaviour, a heap overflow, a stack
// overflow or unbounded memory. Run under ASan+UBSan they must stay silent too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_case(const std::string& name) {
  const fs::path p = fs::path(MOE_TEST_DATA_DIR) / "robustness" / name;
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Loads the tokenizer and encodes `text` as `moe tokenize` does; "<ok> ids..." or the error.
std::string outcome_of(const std::string& tokenizer_json, const std::string& text = "hi") {
  try {
    const moe::Tokenizer t = moe::Tokenizer::from_json(tokenizer_json, "", "/m/tokenizer.json");
    std::string out = "<ok>";
    for (int32_t id : t.encode(text, true)) {
      out += ' ';
      out += std::to_string(id);
    }
    return out;
  } catch (const moe::Error& e) {
    return e.what();
  }
}

std::string outcome(const std::string& name, const std::string& text = "hi") {
  return outcome_of(read_case(name), text);
}

TEST(TokenizerRobustness, VocabIdInt32Max) {
  // max_id + 1 overflowed int32, and the id table would have taken 16 GiB.
  EXPECT_EQ(outcome("tokenizer-ubsan-vocab-id-int32max.json"),
            "/m/tokenizer.json: model (BPE): vocab entry 'a' has id 2147483647, above the largest supported id "
            "16777215");
  json j = json::parse(read_case("tokenizer-ubsan-vocab-id-int32max.json"));
  j["model"]["vocab"]["a"] = 0;
  j["added_tokens"] = json::array({{{"id", 4294967296LL}, {"content", "<x>"}, {"special", true}}});
  EXPECT_EQ(outcome_of(j.dump()),
            "/m/tokenizer.json: added_tokens[0]: missing or bad 'id' (an integer in [0, 16777215])");
  j["added_tokens"] = json::array({{{"id", 16777215}, {"content", "<x>"}, {"special", true}}});
  EXPECT_EQ(outcome_of(j.dump(), "a<x>"), "<ok> 0 16777215");
}

TEST(TokenizerRobustness, BackslashCInARegexIsRefused) {
  // \C matches one byte and cut the 4-byte character of the .text input in two: the pieces
  // after it were read past their end (heap-buffer-overflow).
  const std::string msg = outcome("tokenizer-heapoverflow-split-backslashC.json",
                                  read_case("tokenizer-heapoverflow-split-backslashC.text"));
  EXPECT_NE(msg.find("/m/tokenizer.json: pre_tokenizer.pretokenizers[0] (Split): regex '.{20}\\C' does not compile"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("\\C is disabled"), std::string::npos) << msg;
}

TEST(TokenizerRobustness, NestedTemplateProcessingIsBounded) {
  // 12 TemplateProcessing steps, each repeating $A 8 times: 8^12 copies of the input (19 GB).
  EXPECT_EQ(outcome("tokenizer-oom-nested-templateprocessing.json"),
            "/m/tokenizer.json: post_processor.processors[1] (TemplateProcessing): the templates copy the input 64 "
            "times in all; at most 16 copies are supported");
  // Twice $A, as tokenizers allows: bounded, and still done.
  json j = json::parse(read_case("tokenizer-oom-nested-templateprocessing.json"));
  j["post_processor"] = j["post_processor"]["processors"][0];
  j["post_processor"]["single"] =
      json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}});
  j["model"]["vocab"] = {{"h", 0}, {"i", 1}};
  EXPECT_EQ(outcome_of(j.dump()), "<ok> 0 1 0 1");
}

TEST(TokenizerRobustness, DeepJsonIsRefusedBeforeItIsWalked) {
  // dropout: 200000 nested arrays, dumped into the error message (recursion in dump()).
  EXPECT_EQ(outcome("tokenizer-stackoverflow-deep-dropout.json"),
            "/m/tokenizer.json: JSON nests deeper than 512 levels (at byte 574)");
  // 20000 nested Sequence normalizers: over the depth limit of the JSON already.
  EXPECT_EQ(outcome("tokenizer-stackoverflow-nested-sequence-normalizer.json"),
            "/m/tokenizer.json: JSON nests deeper than 512 levels (at byte 8718)");
  // A bad value in an error message is cut short.
  json j = json::parse(read_case("tokenizer-ubsan-vocab-id-int32max.json"));
  j["model"]["vocab"]["a"] = 0;
  j["model"]["dropout"] = std::string(10000, 'x');
  const std::string msg = outcome_of(j.dump());
  EXPECT_NE(msg.find("dropout \"xxxx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("... (10002 characters) is not supported (only null)"), std::string::npos) << msg;
  EXPECT_LT(msg.size(), 300u) << msg;
}

TEST(TokenizerRobustness, SequenceNestingIsBounded) {
  // Within the JSON limit, Sequence components still nest at most 16 deep.
  const std::pair<const char*, const char*> kinds[] = {{"normalizer", "normalizers"},
                                                       {"pre_tokenizer", "pretokenizers"},
                                                       {"decoder", "decoders"},
                                                       {"post_processor", "processors"}};
  for (const auto& [kind, list] : kinds) {
    json c = {{"type", "Sequence"}, {list, json::array()}};
    for (int i = 0; i < 40; ++i) c = {{"type", "Sequence"}, {list, json::array({c})}};
    json j = json::parse(read_case("tokenizer-ubsan-vocab-id-int32max.json"));
    j["model"]["vocab"]["a"] = 0;
    j[kind] = c;
    const std::string msg = outcome_of(j.dump());
    EXPECT_NE(msg.find("(Sequence): Sequence nested deeper than 16 levels"), std::string::npos) << kind << ": " << msg;
    // Two levels, as real tokenizers have, load.
    j[kind] = {{"type", "Sequence"}, {list, json::array({{{"type", "Sequence"}, {list, json::array()}}})}};
    EXPECT_EQ(outcome_of(j.dump(), "a"), "<ok> 0") << kind;
  }
}

}  // namespace
