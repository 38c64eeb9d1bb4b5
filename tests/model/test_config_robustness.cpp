// Hostile config.json files (tests/fixtures/robustness/config-*.json; issue 16): one moe::Error
// each, before any allocation sized by the config and without recursing through deep JSON.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/model/config.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

using test::base_config;
using test::json;

std::string read_case(const std::string& name) {
  const std::filesystem::path p = std::filesystem::path(MOE_TEST_DATA_DIR) / "robustness" / name;
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ModelConfig parse_text(const std::string& text) {
  return parse_model_config(text, "/m/config.json");
}

TEST(ConfigRobustness, BillionLayersAreRefusedBeforeAllocating) {
  // num_hidden_layers 1e9 took 8 GB in per-layer tables before anything looked at it.
  EXPECT_ERROR_CONTAINS(parse_text(read_case("config-oom-num_hidden_layers-1e9.json")),
                        {"/m/config.json: num_hidden_layers 1000000000 is larger than this runtime supports "
                         "(at most 4096)"});
  const auto too_big = [](const char* key, int64_t v) {
    json j = base_config("qwen2_moe");
    j[key] = v;
    return j.dump();
  };
  EXPECT_ERROR_CONTAINS(parse_text(too_big("vocab_size", int64_t{1} << 30)), {"vocab_size 1073741824", "at most"});
  EXPECT_ERROR_CONTAINS(parse_text(too_big("hidden_size", int64_t{1} << 40)), {"hidden_size", "at most 1048576"});
  EXPECT_ERROR_CONTAINS(parse_text(too_big("num_experts", int64_t{1} << 20)), {"num_experts 1048576", "at most 65536"});
  EXPECT_ERROR_CONTAINS(parse_text(too_big("moe_intermediate_size", int64_t{1} << 21)),
                        {"moe_intermediate_size 2097152", "at most 1048576"});
  // Every dimension within its limit, but all at once: too many parameters in all.
  json j = base_config("mixtral");
  j["num_hidden_layers"] = 4096;
  j["hidden_size"] = 65536;
  j["num_local_experts"] = 4096;
  j["intermediate_size"] = 65536;
  EXPECT_ERROR_CONTAINS(parse_text(j.dump()), {"/m/config.json: the config describes about", "parameters"});
  // The largest real models are far inside the limits.
  j = base_config("qwen3_moe");
  j["num_hidden_layers"] = 128;
  j["hidden_size"] = 8192;
  j["num_attention_heads"] = 64;
  j["num_key_value_heads"] = 8;
  j["num_experts"] = 512;
  j["moe_intermediate_size"] = 2048;
  j["vocab_size"] = 262144;
  EXPECT_EQ(parse_text(j.dump()).num_layers, 128);
}

TEST(ConfigRobustness, DeepJsonIsRefusedBeforeItIsWalked) {
  // "architectures": 200000 nested arrays, dumped into the 'must be a list' message.
  EXPECT_ERROR_CONTAINS(parse_text(read_case("config-stackoverflow-deep-json.json")),
                        {"/m/config.json: JSON nests deeper than 512 levels (at byte 529)"});
  // A wrong value is quoted, cut short.
  json j = base_config("mixtral");
  j["architectures"] = std::string(5000, 'A');
  EXPECT_ERROR_CONTAINS(parse_text(j.dump()), {"key 'architectures' must be a non-empty list of strings, found \"AAA",
                                               "... (5002 characters)"});
}

TEST(ConfigRobustness, NumberOutOfRangeIsInvalidJson) {
  // fuzz_config (issue 15): nlohmann throws out_of_range, not parse_error, for 1e400; it escaped
  // parse_model_config as a foreign exception.
  const std::filesystem::path p =
      std::filesystem::path(MOE_TEST_DATA_DIR) / "fuzz_regressions" / "config-number-out-of-range.json";
  std::ifstream in(p, std::ios::binary);
  ASSERT_TRUE(in.good()) << p;
  std::ostringstream s;
  s << in.rdbuf();
  EXPECT_ERROR_CONTAINS(parse_text(s.str()), {"/m/config.json: invalid JSON: ", "number overflow"});
  EXPECT_ERROR_CONTAINS(parse_text(R"({"x": -1e999})"), {"/m/config.json: invalid JSON: "});
}

}  // namespace
}  // namespace moe
