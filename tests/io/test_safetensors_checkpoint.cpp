// SafetensorsCheckpoint: sharded (index), single-file and glob directories, and every way a
// checkpoint directory can be inconsistent.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/io/safetensors.h"
#include "tests/io/st_builder.h"

namespace moe {
namespace {

using test::expect_contains;
using test::iota_bytes;

class Checkpoint : public ::testing::Test {
 protected:
  // Writes a shard holding U8 tensors of 2 bytes each, named `names`.
  void shard(const std::string& file, const std::vector<std::string>& names, uint8_t fill = 0) {
    SafetensorsWriter w;
    for (const auto& n : names) w.add(n, DType::kU8, {2}, iota_bytes(2, fill));
    w.write(dir_ / file);
  }
  void index(const std::string& json) { test::write_bytes(dir_ / "model.safetensors.index.json", json); }
  std::string open_error() {
    return test::error_of([&] { SafetensorsCheckpoint::open(dir_.path()); });
  }

  test::TempDir dir_;
};

TEST_F(Checkpoint, ShardedWithIndex) {
  shard("model-00001-of-00002.safetensors", {"a", "b"}, 10);
  shard("model-00002-of-00002.safetensors", {"c", "extra"}, 20);
  shard("unrelated.safetensors", {"a"});  // not named by the index: never opened
  index(R"({"metadata": {"total_size": 6}, "weight_map": {)"
        R"("a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",)"
        R"("c": "model-00002-of-00002.safetensors"}})");
  const auto ck = SafetensorsCheckpoint::open(dir_.path());
  EXPECT_EQ(ck.dir(), dir_.path());
  // "extra" is in a shard but not in the index: still accessible.
  EXPECT_EQ(ck.tensor_names(), (std::vector<std::string>{"a", "b", "c", "extra"}));
  EXPECT_TRUE(ck.contains("extra"));
  EXPECT_FALSE(ck.contains("d"));
  EXPECT_EQ(ck.total_bytes(), 8u);
  const TensorView c = ck.tensor("c");
  EXPECT_EQ(c.file, (dir_ / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(static_cast<const uint8_t*>(c.data)[0], 20);
  EXPECT_EQ(static_cast<const uint8_t*>(ck.tensor("a").data)[1], 11);
}

TEST_F(Checkpoint, IndexShardInSubdirectory) {
  std::filesystem::create_directories(dir_ / "shards");
  shard("shards/s.safetensors", {"a"});
  index(R"({"weight_map": {"a": "./shards/s.safetensors"}})");
  EXPECT_TRUE(SafetensorsCheckpoint::open(dir_.path()).contains("a"));
}

TEST_F(Checkpoint, SingleModelFileWinsOverOthers) {
  shard("model.safetensors", {"w"});
  shard("other.safetensors", {"w"});  // ignored: model.safetensors is used alone
  const auto ck = SafetensorsCheckpoint::open(dir_.path());
  EXPECT_EQ(ck.tensor_names(), (std::vector<std::string>{"w"}));
  EXPECT_EQ(ck.tensor("w").file, (dir_ / "model.safetensors").string());
}

TEST_F(Checkpoint, GlobAllSafetensorsFiles) {
  shard("b.safetensors", {"y"});
  shard("a.safetensors", {"x"});
  test::write_bytes(dir_ / "notes.txt", "not a tensor file");
  const auto ck = SafetensorsCheckpoint::open(dir_.path());
  EXPECT_EQ(ck.tensor_names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(ck.tensor("y").file, (dir_ / "b.safetensors").string());
}

TEST_F(Checkpoint, TensorNotFoundNamesDirAndTensor) {
  shard("model.safetensors", {"w"});
  const auto ck = SafetensorsCheckpoint::open(dir_.path());
  EXPECT_EQ(test::error_of([&] { ck.tensor("nope"); }),
            dir_.path().string() + ": tensor 'nope' not found in the checkpoint");
}

TEST_F(Checkpoint, EmptyDirectory) {
  expect_contains(open_error(), {dir_.path().string(), "no safetensors files found"});
}

TEST_F(Checkpoint, NotADirectory) {
  expect_contains(test::error_of([&] { SafetensorsCheckpoint::open(dir_ / "missing"); }),
                  {"missing", "not a directory"});
}

TEST_F(Checkpoint, MissingShardFile) {
  shard("model-00001-of-00002.safetensors", {"a"});
  index(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",)"
        R"( "b": "model-00002-of-00002.safetensors"}})");
  expect_contains(open_error(),
                  {"model.safetensors.index.json", "shard 'model-00002-of-00002.safetensors'", "does not exist"});
}

TEST_F(Checkpoint, IndexNamesTensorTheShardLacks) {
  shard("s1.safetensors", {"a"});
  shard("s2.safetensors", {"b"});
  index(R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})");
  expect_contains(open_error(), {"model.safetensors.index.json", "tensor 'b'", "'s1.safetensors'", "does not hold it"});
}

TEST_F(Checkpoint, TensorInTwoShards) {
  shard("s1.safetensors", {"a", "dup"});
  shard("s2.safetensors", {"b", "dup"});
  index(R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "dup": "s1.safetensors"}})");
  expect_contains(open_error(),
                  {dir_.path().string(), "tensor 'dup'", "two files", "s1.safetensors", "s2.safetensors"});
}

TEST_F(Checkpoint, TensorInTwoGlobbedFiles) {
  shard("a.safetensors", {"dup"});
  shard("b.safetensors", {"dup"});
  expect_contains(open_error(), {"tensor 'dup'", "two files", "a.safetensors", "b.safetensors"});
}

TEST_F(Checkpoint, IndexInvalidJson) {
  shard("s1.safetensors", {"a"});
  index(R"({"weight_map": {"a": "s1.safetensors")");
  expect_contains(open_error(), {"model.safetensors.index.json", "index is not valid JSON"});
}

TEST_F(Checkpoint, IndexDuplicateTensor) {
  shard("s1.safetensors", {"a"});
  index(R"({"weight_map": {"a": "s1.safetensors", "a": "s1.safetensors"}})");
  expect_contains(open_error(), {"model.safetensors.index.json", "duplicate key \"a\""});
}

TEST_F(Checkpoint, IndexWithoutWeightMap) {
  shard("s1.safetensors", {"a"});
  index(R"({"metadata": {"total_size": 2}})");
  expect_contains(open_error(), {"model.safetensors.index.json", "missing \"weight_map\""});
}

TEST_F(Checkpoint, IndexShardNotAString) {
  index(R"({"weight_map": {"a": 3}})");
  expect_contains(open_error(), {"model.safetensors.index.json", "tensor 'a'", "must be a file name"});
}

TEST_F(Checkpoint, ShardPathWithDotDot) {
  shard("s1.safetensors", {"a"});
  index(R"({"weight_map": {"a": "../s1.safetensors"}})");
  expect_contains(open_error(), {"model.safetensors.index.json", "tensor 'a'", "../s1.safetensors",
                                 "escape the checkpoint directory"});
}

TEST_F(Checkpoint, ShardPathDotDotInTheMiddle) {
  index(R"({"weight_map": {"a": "sub/../../x.safetensors"}})");
  expect_contains(open_error(), {"'..'", "escape"});
}

TEST_F(Checkpoint, AbsoluteShardPath) {
  shard("s1.safetensors", {"a"});
  index(R"({"weight_map": {"a": ")" + (dir_ / "s1.safetensors").string() + R"("}})");
  expect_contains(open_error(), {"model.safetensors.index.json", "tensor 'a'", "is absolute"});
}

TEST_F(Checkpoint, InvalidShardReportsTheShardFile) {
  test::write_raw_st(dir_ / "s1.safetensors", R"({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}})", 1);
  index(R"({"weight_map": {"a": "s1.safetensors"}})");
  expect_contains(open_error(), {(dir_ / "s1.safetensors").string(), "tensor 'a'", "unknown dtype"});
}

}  // namespace
}  // namespace moe
