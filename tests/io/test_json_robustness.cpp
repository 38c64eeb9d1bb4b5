// Deep JSON in a safetensors header and in a packed-store manifest
// (tests/fixtures/robustness/; issue 16): refused with a moe::Error before nlohmann::json copies
// or dumps it (both recurse: 200000 levels overflowed the stack).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/io/json_limits.h"
#include "runtime/io/packed_store.h"
#include "runtime/io/safetensors.h"
#include "tests/io/st_builder.h"

namespace moe {
namespace {

namespace fs = std::filesystem;

fs::path fixture(const std::string& name) {
  return fs::path(MOE_TEST_DATA_DIR) / "robustness" / name;
}

void expect_contains(const std::string& msg, const std::string& part) {
  EXPECT_NE(msg.find(part), std::string::npos) << "'" << msg << "' should contain '" << part << "'";
}

TEST(JsonRobustness, DeepSafetensorsHeader) {
  const fs::path p = fixture("safetensors-stackoverflow-deep-header.safetensors");
  expect_contains(test::error_of([&] { SafetensorsFile::open(p); }),
                  p.string() + ": header nests deeper than 512 levels");
}

TEST(JsonRobustness, DeepPackedManifest) {
  test::TempDir dir;
  fs::copy_file(fixture("packed-stackoverflow-deep-source-config.manifest.json"), dir / "manifest.json");
  expect_contains(test::error_of([&] { PackedStore::open(dir.path(), /*verify=*/false); }),
                  (dir / "manifest.json").string() + ": JSON nests deeper than 512 levels (at byte ");
}

TEST(JsonRobustness, DepthScanIgnoresStringsAndAllowsTheLimit) {
  const std::string deep_ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(check_json_depth(deep_ok, "x"));
  expect_contains(test::error_of([&] { check_json_depth("[" + deep_ok + "]", "x"); }),
                  "x: JSON nests deeper than 512 levels (at byte 512)");
  const std::string in_string = "{\"k\": \"" + std::string(10000, '[') + "\\\"[[[\"}";
  EXPECT_NO_THROW(check_json_depth(in_string, "x"));
  EXPECT_EQ(json_excerpt(nlohmann::json("\xC3\xA9\xC3\xA9\xC3\xA9"), 4), "\"\xC3\xA9... (8 characters)");
}

}  // namespace
}  // namespace moe
