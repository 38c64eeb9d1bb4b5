// MappedFile: contents, the empty-file case, move semantics and error messages.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "runtime/io/mapped_file.h"
#include "tests/io/st_builder.h"

namespace moe {
namespace {

TEST(MappedFile, MapsTheWholeFile) {
  test::TempDir dir;
  test::write_bytes(dir / "f.bin", std::string("hello\0world", 11));
  const MappedFile f = MappedFile::open(dir / "f.bin");
  ASSERT_EQ(f.size(), 11u);
  ASSERT_NE(f.data(), nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data()), 11), std::string("hello\0world", 11));
  EXPECT_EQ(f.path(), dir / "f.bin");
}

TEST(MappedFile, EmptyFileHasNoData) {
  test::TempDir dir;
  test::write_bytes(dir / "empty", "");
  const MappedFile f = MappedFile::open(dir / "empty");
  EXPECT_EQ(f.data(), nullptr);
  EXPECT_EQ(f.size(), 0u);
}

TEST(MappedFile, MoveTransfersOwnership) {
  test::TempDir dir;
  test::write_bytes(dir / "a", "aaaa");
  test::write_bytes(dir / "b", "bb");
  MappedFile a = MappedFile::open(dir / "a");
  const uint8_t* pa = a.data();
  MappedFile moved(std::move(a));
  EXPECT_EQ(moved.data(), pa);
  EXPECT_EQ(moved.size(), 4u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a.size(), 0u);

  MappedFile b = MappedFile::open(dir / "b");
  b = std::move(moved);  // unmaps b's old mapping
  EXPECT_EQ(b.data(), pa);
  EXPECT_EQ(b.size(), 4u);
  EXPECT_EQ(b.path(), dir / "a");
  EXPECT_EQ(b.data()[3], 'a');
}

TEST(MappedFile, MissingFileNamesPathAndErrno) {
  test::TempDir dir;
  EXPECT_EQ(test::error_of([&] { MappedFile::open(dir / "missing.bin"); }),
            (dir / "missing.bin").string() + ": cannot open: No such file or directory");
}

TEST(MappedFile, DirectoryIsRejected) {
  test::TempDir dir;
  EXPECT_EQ(test::error_of([&] { MappedFile::open(dir.path()); }), dir.path().string() + ": not a regular file");
}

}  // namespace
}  // namespace moe
