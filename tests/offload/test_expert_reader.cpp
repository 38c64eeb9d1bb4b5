// The NVMe reader: both engines deliver exactly the bytes asked for at 4 KiB-aligned offsets
// with O_DIRECT, many reads in flight at once; a read past the end of the file fails with the
// file, expert, offset and sizes.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "runtime/offload/expert_reader.h"
#include "runtime/offload/slot_pool.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

class ExpertReaderTest : public ::testing::TestWithParam<ReaderKind> {
 protected:
  void SetUp() override {
    if (GetParam() == ReaderKind::kUring && !reader_has_uring()) GTEST_SKIP() << "built without liburing";
    bytes_.resize(5 * 1024 * 1024 + 1000);
    for (size_t i = 0; i < bytes_.size(); ++i) bytes_[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
    path_ = dir_ / "experts.bin";
    std::ofstream out(path_, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes_.data()), static_cast<std::streamsize>(bytes_.size()));
  }
  test::TempDir dir_;
  std::filesystem::path path_;
  std::vector<uint8_t> bytes_;
};

TEST_P(ExpertReaderTest, ReadsExactBytesWithManyInFlight) {
  std::unique_ptr<ExpertReader> r = open_expert_reader(path_, GetParam(), 3);
  EXPECT_TRUE(r->direct()) << r->describe() << " (ext4 and xfs allow O_DIRECT)";
  EXPECT_NE(r->describe().find(GetParam() == ReaderKind::kPread ? "pread" : "io_uring"), std::string::npos);
  // Odd sizes, offsets 4 KiB aligned; the last read ends at the end of the file (short block).
  const std::vector<std::pair<uint64_t, uint64_t>> reads = {
      {0, 100}, {4096, 3 * 1024 * 1024 + 5}, {8192, 4096}, {5 * 1024 * 1024, 1000}, {1u << 20, (1u << 20) + 1}};
  SlotPool pool(static_cast<int64_t>(reads.size()), 3 * 1024 * 1024 + 8192);
  std::vector<ReadCompletion> done(reads.size());
  for (size_t i = 0; i < reads.size(); ++i) {
    std::memset(pool.data(static_cast<int64_t>(i)), 0xAB, pool.slot_bytes());
    r->submit({.key = {0, static_cast<int32_t>(i)},
               .offset = reads[i].first,
               .bytes = reads[i].second,
               .dst = pool.data(static_cast<int64_t>(i)),
               .done = &done[i]});
  }
  for (size_t i = 0; i < reads.size(); ++i) {
    done[i].wait();
    EXPECT_TRUE(done[i].done());
    EXPECT_EQ(std::memcmp(pool.data(static_cast<int64_t>(i)), bytes_.data() + reads[i].first, reads[i].second), 0)
        << "read " << i;
  }
  EXPECT_GE(r->bytes_read(), 100 + 3u * 1024 * 1024 + 5 + 4096 + 1000 + (1u << 20) + 1);
}

// Background (prefetch) reads mixed with foreground ones, several at once: every read completes
// with exactly its bytes, whichever class it is in; a background read alone completes too, and
// a failing background read reports its error like any other.
TEST_P(ExpertReaderTest, BackgroundReadsCompleteWithTheirBytes) {
  std::unique_ptr<ExpertReader> r = open_expert_reader(path_, GetParam(), 2);
  const std::vector<std::pair<uint64_t, uint64_t>> reads = {
      {0, 3 * 1024 * 1024 + 17},   {4096, 2 * 1024 * 1024}, {8192, 100},
      {1u << 20, 3 * 1024 * 1024}, {5 * 1024 * 1024, 1000}, {12288, (1u << 20) + 1}};
  SlotPool pool(static_cast<int64_t>(reads.size()), 3 * 1024 * 1024 + 8192);
  for (int round = 0; round < 3; ++round) {
    std::vector<ReadCompletion> done(reads.size());
    for (size_t i = 0; i < reads.size(); ++i) {
      std::memset(pool.data(static_cast<int64_t>(i)), 0xAB, pool.slot_bytes());
      r->submit({.key = {1, static_cast<int32_t>(i)},
                 .offset = reads[i].first,
                 .bytes = reads[i].second,
                 .dst = pool.data(static_cast<int64_t>(i)),
                 .done = &done[i],
                 .background = (i + static_cast<size_t>(round)) % 2 == 0});
    }
    // Wait in reverse: a background read waited on first must still finish.
    for (size_t i = reads.size(); i-- > 0;) {
      done[i].wait();
      EXPECT_EQ(std::memcmp(pool.data(static_cast<int64_t>(i)), bytes_.data() + reads[i].first, reads[i].second), 0)
          << "round " << round << " read " << i;
    }
  }
  ReadCompletion bad;
  r->submit(
      {.key = {3, 8}, .offset = 6 * 1024 * 1024, .bytes = 4096, .dst = pool.data(0), .done = &bad, .background = true});
  EXPECT_ERROR_CONTAINS(bad.wait(), {path_.string(), "expert 3.8", "end of file after 0 bytes"});
}

TEST_P(ExpertReaderTest, ReadPastTheEndFailsWithTheNumbers) {
  std::unique_ptr<ExpertReader> r = open_expert_reader(path_, GetParam(), 2);
  SlotPool pool(1, 2 * 1024 * 1024);
  ReadCompletion done;
  const uint64_t offset = 6 * 1024 * 1024;  // beyond the 5 MiB + 1000 bytes file
  r->submit({.key = {3, 7}, .offset = offset, .bytes = 8192, .dst = pool.data(0), .done = &done});
  EXPECT_ERROR_CONTAINS(done.wait(),
                        {path_.string(), "expert 3.7", "8192 bytes at offset 6291456", "end of file after 0 bytes"});
}

INSTANTIATE_TEST_SUITE_P(Engines, ExpertReaderTest, ::testing::Values(ReaderKind::kUring, ReaderKind::kPread),
                         [](const auto& p) { return p.param == ReaderKind::kUring ? "uring" : "pread"; });

TEST(ExpertReader, MissingFileAndBadNames) {
  EXPECT_ERROR_CONTAINS(open_expert_reader("/nonexistent/experts.bin", ReaderKind::kAuto),
                        {"/nonexistent/experts.bin", "cannot open"});
  EXPECT_ERROR_CONTAINS(parse_reader_kind("mmap"), {"--expert-reader", "auto, uring or pread"});
}

}  // namespace
}  // namespace moe
