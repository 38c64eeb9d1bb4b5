// .npy float32 I/O: round trips, numpy's exact bytes, a numpy-written fixture and malformed files.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "runtime/io/npy.h"
#include "tests/io/st_builder.h"

namespace moe {
namespace {

using test::expect_contains;

const std::filesystem::path kFixture = std::filesystem::path(MOE_TEST_DATA_DIR) / "io" / "numpy_written.npy";

// Offset of the data: 10 + u16 header length (format 1.0).
size_t data_offset_v1(const std::string& bytes) {
  return 10 + (static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8));
}

void expect_round_trip(const std::vector<int64_t>& shape, const std::vector<float>& data) {
  test::TempDir dir;
  write_npy(dir / "a.npy", shape, data.data());
  const NpyArray a = read_npy(dir / "a.npy");
  EXPECT_EQ(a.shape, shape);
  ASSERT_EQ(a.data.size(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(a.data[i]), std::bit_cast<uint32_t>(data[i])) << i;
  }
  const std::string bytes = test::read_file_bytes(dir / "a.npy");
  EXPECT_EQ(data_offset_v1(bytes) % 64, 0u);  // numpy's alignment convention
  EXPECT_EQ(bytes.size(), data_offset_v1(bytes) + 4 * data.size());
  EXPECT_EQ(bytes[data_offset_v1(bytes) - 1], '\n');
}

TEST(Npy, RoundTrip2D) {
  expect_round_trip({2, 3}, {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-40f});
}

TEST(Npy, RoundTripSpecialValues) {
  expect_round_trip({4}, {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max()});
}

TEST(Npy, RoundTrip0D) {
  expect_round_trip({}, {42.0f});
}

TEST(Npy, RoundTripEmpty) {
  test::TempDir dir;
  write_npy(dir / "e.npy", {0, 3}, nullptr);
  const NpyArray a = read_npy(dir / "e.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(a.data.empty());
}

TEST(Npy, RoundTripLarge3D) {
  std::vector<float> v(2 * 3 * 1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.25f - 7.0f;
  expect_round_trip({2, 3, 1000}, v);
}

// tests/fixtures/io/numpy_written.npy was written by numpy 2.4 (not run in CI):
//   np.save("numpy_written.npy", np.arange(6, dtype='<f4').reshape(2, 3) * 0.5 - 1)
TEST(Npy, ReadsNumpyWrittenFile) {
  const NpyArray a = read_npy(kFixture);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(a.data.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(a.data[i], 0.5f * static_cast<float>(i) - 1.0f);
}

TEST(Npy, WritesTheSameBytesAsNumpy) {
  test::TempDir dir;
  std::vector<float> v(6);
  for (size_t i = 0; i < 6; ++i) v[i] = 0.5f * static_cast<float>(i) - 1.0f;
  write_npy(dir / "same.npy", {2, 3}, v.data());
  EXPECT_EQ(test::read_file_bytes(dir / "same.npy"), test::read_file_bytes(kFixture));
}

TEST(Npy, ReadsFormat2AndDoubleQuotedKeys) {
  test::TempDir dir;
  std::string header = "{\"descr\": \"<f4\", \"shape\": (2,), \"fortran_order\": False}";
  header.append(64 - (12 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) file += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  const float data[2] = {1.5f, -3.0f};
  file.append(reinterpret_cast<const char*>(data), sizeof data);
  test::write_bytes(dir / "v2.npy", file);
  const NpyArray a = read_npy(dir / "v2.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(a.data, (std::vector<float>{1.5f, -3.0f}));
}

class NpyBad : public ::testing::Test {
 protected:
  // The fixture's bytes with the header dict replaced by `dict` (re-padded to 64).
  void write_with_dict(std::string dict, size_t data_bytes) {
    dict.append(64 - (10 + dict.size() + 1) % 64, ' ');
    dict += '\n';
    std::string file = std::string("\x93NUMPY\x01\x00", 8);
    file += static_cast<char>(dict.size() & 0xff);
    file += static_cast<char>(dict.size() >> 8);
    file += dict + std::string(data_bytes, '\0');
    test::write_bytes(file_, file);
  }
  std::string read_error() {
    return test::error_of([&] { read_npy(file_); });
  }

  test::TempDir dir_;
  std::filesystem::path file_ = dir_ / "bad.npy";
};

TEST_F(NpyBad, TruncatedData) {
  const std::string good = test::read_file_bytes(kFixture);
  test::write_bytes(file_, good.substr(0, good.size() - 5));
  expect_contains(read_error(), {"bad.npy", "truncated", "data is 19 bytes", "(2, 3)", "needs 24"});
}

TEST_F(NpyBad, TrailingBytes) {
  test::write_bytes(file_, test::read_file_bytes(kFixture) + "xy");
  expect_contains(read_error(), {"bad.npy", "2 trailing bytes"});
}

TEST_F(NpyBad, TruncatedHeader) {
  test::write_bytes(file_, test::read_file_bytes(kFixture).substr(0, 40));
  expect_contains(read_error(), {"bad.npy", "header length 118", "past the end"});
}

TEST_F(NpyBad, TooShort) {
  test::write_bytes(file_, "\x93NUM");
  expect_contains(read_error(), {"bad.npy", "too short"});
}

TEST_F(NpyBad, BadMagic) {
  test::write_bytes(file_, "PK\x03\x04 this is a zip file, not npy");
  expect_contains(read_error(), {"bad.npy", "not an npy file"});
}

TEST_F(NpyBad, UnsupportedVersion) {
  std::string bytes = test::read_file_bytes(kFixture);
  bytes[6] = '\x03';
  test::write_bytes(file_, bytes);
  expect_contains(read_error(), {"bad.npy", "version 3.0 not supported"});
}

TEST_F(NpyBad, WrongDtype) {
  write_with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16);
  expect_contains(read_error(), {"bad.npy", "dtype '<f8' not supported"});
}

TEST_F(NpyBad, BigEndianFloat) {
  write_with_dict("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8);
  expect_contains(read_error(), {"bad.npy", "dtype '>f4' not supported"});
}

TEST_F(NpyBad, FortranOrder) {
  write_with_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
  expect_contains(read_error(), {"bad.npy", "fortran_order True not supported"});
}

TEST_F(NpyBad, MissingShape) {
  write_with_dict("{'descr': '<f4', 'fortran_order': False, }", 4);
  expect_contains(read_error(), {"bad.npy", "lacks one of"});
}

TEST_F(NpyBad, NegativeDim) {
  write_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 0);
  expect_contains(read_error(), {"bad.npy", "malformed npy header", "non-negative integer"});
}

TEST_F(NpyBad, HugeShapeDoesNotOverflow) {
  write_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }", 0);
  expect_contains(read_error(), {"bad.npy", "too many elements"});
}

TEST_F(NpyBad, UnknownKey) {
  write_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", 8);
  expect_contains(read_error(), {"bad.npy", "unexpected key 'x'"});
}

TEST(NpyWrite, RejectsNegativeDim) {
  test::TempDir dir;
  const float x = 0;
  expect_contains(test::error_of([&] { write_npy(dir / "n.npy", {-1}, &x); }), {"n.npy", "(-1,)"});
}

TEST(NpyWrite, MissingDirectoryNamesPath) {
  test::TempDir dir;
  const float x = 0;
  expect_contains(test::error_of([&] { write_npy(dir / "nope" / "n.npy", {1}, &x); }),
                  {"n.npy", "No such file or directory"});
}

TEST(NpyRead, MissingFileNamesPath) {
  test::TempDir dir;
  expect_contains(test::error_of([&] { read_npy(dir / "gone.npy"); }), {"gone.npy", "No such file or directory"});
}

}  // namespace
}  // namespace moe
