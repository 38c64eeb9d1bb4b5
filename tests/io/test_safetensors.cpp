// SafetensorsFile: every malformed-file case the reader must reject (each message names the
// file, the tensor where there is one, and the problem), plus valid edge cases and a file
// written by Python's safetensors library.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "runtime/io/safetensors.h"
#include "tests/io/st_builder.h"

namespace moe {
namespace {

using test::expect_contains;
using test::write_raw_st;

class SafetensorsBad : public ::testing::Test {
 protected:
  // Opens `file_` and returns the error message (a test failure if it opens).
  std::string open_error() {
    return test::error_of([&] { SafetensorsFile::open(file_); });
  }
  // Writes `header` with its true length and `data_len` data bytes, then open_error().
  std::string open_error(const std::string& header, size_t data_len) {
    write_raw_st(file_, header, data_len);
    return open_error();
  }

  test::TempDir dir_;
  std::filesystem::path file_ = dir_ / "bad.safetensors";
};

constexpr const char* kFile = "bad.safetensors";

TEST_F(SafetensorsBad, FileShorterThan8Bytes) {
  test::write_bytes(file_, std::string("\x05\0\0\0\0", 5));
  expect_contains(open_error(), {kFile, "is 5 bytes", "shorter than the 8-byte header length"});
}

TEST_F(SafetensorsBad, EmptyFile) {
  test::write_bytes(file_, "");
  expect_contains(open_error(), {kFile, "is 0 bytes", "shorter than"});
}

TEST_F(SafetensorsBad, HeaderLengthPastEndOfFile) {
  write_raw_st(file_, 1000, "{}", "");
  expect_contains(open_error(), {kFile, "header length 1000", "past the end of the file", "10 bytes"});
}

TEST_F(SafetensorsBad, HeaderLengthOver100MB) {
  write_raw_st(file_, 100'000'001, "{}", "");
  expect_contains(open_error(), {kFile, "header length 100000001", "exceeds the limit of 100000000"});
}

TEST_F(SafetensorsBad, HeaderLengthHugeDoesNotOverflow) {
  write_raw_st(file_, ~uint64_t{0}, "{}", "");
  expect_contains(open_error(), {kFile, "header length 18446744073709551615", "exceeds the limit"});
}

TEST_F(SafetensorsBad, EmptyHeader) {
  write_raw_st(file_, 0, "", "");
  expect_contains(open_error(), {kFile, "header is not valid JSON"});
}

TEST_F(SafetensorsBad, InvalidJson) {
  expect_contains(open_error(R"({"w": {"dtype": "F32", )", 0), {kFile, "header is not valid JSON"});
}

TEST_F(SafetensorsBad, TrailingGarbageAfterJson) {
  expect_contains(open_error("{} x", 0), {kFile, "header is not valid JSON"});
}

TEST_F(SafetensorsBad, HeaderNotAnObject) {
  expect_contains(open_error("[1, 2]", 0), {kFile, "header is not a JSON object"});
}

TEST_F(SafetensorsBad, DuplicateTensorKey) {
  const std::string h = R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},)"
                        R"( "w": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}})";
  expect_contains(open_error(h, 4), {kFile, "duplicate key", "\"w\""});
}

TEST_F(SafetensorsBad, DuplicateKeyInsideEntry) {
  const std::string h = R"({"w": {"dtype": "U8", "dtype": "I8", "shape": [2], "data_offsets": [0, 2]}})";
  expect_contains(open_error(h, 2), {kFile, "duplicate key", "\"dtype\""});
}

TEST_F(SafetensorsBad, EntryNotAnObject) {
  expect_contains(open_error(R"({"w": [1, 2]})", 0), {kFile, "tensor 'w'", "must be an object"});
}

TEST_F(SafetensorsBad, EntryMissingDtype) {
  expect_contains(open_error(R"({"w": {"shape": [2], "data_offsets": [0, 2]}})", 2),
                  {kFile, "tensor 'w'", "missing \"dtype\""});
}

TEST_F(SafetensorsBad, EntryMissingShape) {
  expect_contains(open_error(R"({"w": {"dtype": "U8", "data_offsets": [0, 2]}})", 2),
                  {kFile, "tensor 'w'", "missing \"shape\""});
}

TEST_F(SafetensorsBad, EntryMissingDataOffsets) {
  expect_contains(open_error(R"({"w": {"dtype": "U8", "shape": [2]}})", 2),
                  {kFile, "tensor 'w'", "missing \"data_offsets\""});
}

TEST_F(SafetensorsBad, UnknownDtype) {
  expect_contains(open_error(R"({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})", 2),
                  {kFile, "tensor 'w'", "unknown dtype \"Q4\""});
}

TEST_F(SafetensorsBad, DtypeNotAString) {
  expect_contains(open_error(R"({"w": {"dtype": 7, "shape": [2], "data_offsets": [0, 2]}})", 2),
                  {kFile, "tensor 'w'", "dtype must be a string"});
}

TEST_F(SafetensorsBad, NegativeDim) {
  expect_contains(open_error(R"({"w": {"dtype": "U8", "shape": [2, -1], "data_offsets": [0, 2]}})", 2),
                  {kFile, "tensor 'w'", "negative dim -1", "[2,-1]"});
}

TEST_F(SafetensorsBad, NonIntegerDim) {
  expect_contains(open_error(R"({"w": {"dtype": "U8", "shape": [2.5], "data_offsets": [0, 2]}})", 2),
                  {kFile, "tensor 'w'", "not a non-negative integer", "2.5"});
}

TEST_F(SafetensorsBad, DimLargerThanInt64) {
  const std::string h = R"({"w": {"dtype": "U8", "shape": [9223372036854775808], "data_offsets": [0, 2]}})";
  expect_contains(open_error(h, 2), {kFile, "tensor 'w'", "too large"});
}

TEST_F(SafetensorsBad, NumelOverflow) {
  const std::string h = R"({"w": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 2]}})";
  expect_contains(open_error(h, 2), {kFile, "tensor 'w'", "too many elements", "overflow"});
}

TEST_F(SafetensorsBad, BitsOverflow) {
  // numel fits in int64 but numel * 64 bits does not fit in 64 bits.
  const std::string h = R"({"w": {"dtype": "F64", "shape": [1152921504606846976], "data_offsets": [0, 8]}})";
  expect_contains(open_error(h, 8), {kFile, "tensor 'w'", "F64", "overflow"});
}

TEST_F(SafetensorsBad, SizeDisagreesWithShapeAndDtype) {
  write_raw_st(file_, R"({"model.embed_tokens.weight": {"dtype": "BF16", "shape": [4, 8], "data_offsets": [0, 100]}})",
               100);
  EXPECT_EQ(open_error(), file_.string() +
                              ": tensor 'model.embed_tokens.weight': data_offsets [0, 100) hold 100 "
                              "bytes but shape [4, 8] of BF16 needs 64");
}

TEST_F(SafetensorsBad, F4OddElementCount) {
  expect_contains(open_error(R"({"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 1]}})", 1),
                  {kFile, "tensor 'w'", "F4", "12 bits", "not a whole number of bytes"});
}

TEST_F(SafetensorsBad, DataOffsetsWrongArity) {
  expect_contains(open_error(R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2, 4]}})", 2),
                  {kFile, "tensor 'w'", "data_offsets must be [begin, end]"});
}

TEST_F(SafetensorsBad, DataOffsetsNegative) {
  expect_contains(open_error(R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [-2, 0]}})", 2),
                  {kFile, "tensor 'w'", "data_offsets must be [begin, end]", "[-2,0]"});
}

TEST_F(SafetensorsBad, EndBeforeBegin) {
  const std::string h = R"({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},)"
                        R"( "b": {"dtype": "U8", "shape": [4], "data_offsets": [8, 4]}})";
  expect_contains(open_error(h, 8), {kFile, "tensor 'b'", "data_offsets [8, 4)", "end < begin"});
}

TEST_F(SafetensorsBad, OverlappingOffsets) {
  const std::string h = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                        R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  expect_contains(open_error(h, 12), {kFile, "tensor 'b'", "data_offsets [4, 12)", "overlap tensor 'a' at [0, 8)"});
}

TEST_F(SafetensorsBad, SameOffsetsTwice) {
  const std::string h = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                        R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  expect_contains(open_error(h, 8), {kFile, "tensor 'b'", "overlap tensor 'a'"});
}

TEST_F(SafetensorsBad, GapBetweenTensors) {
  const std::string h = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                        R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})";
  expect_contains(open_error(h, 20), {kFile, "tensor 'b'", "gap of 4 bytes", "'a' ends at 8"});
}

TEST_F(SafetensorsBad, FirstTensorNotAtZero) {
  expect_contains(open_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
                  {kFile, "tensor 'a'", "begins at 4", "expected 0"});
}

TEST_F(SafetensorsBad, TrailingBytesAfterLastTensor) {
  expect_contains(open_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 10),
                  {kFile, "'a' ends at 8", "data buffer is 10 bytes", "2 trailing bytes"});
}

TEST_F(SafetensorsBad, TrailingBytesWithNoTensors) {
  expect_contains(open_error("{}", 3), {kFile, "names no tensors", "3 trailing bytes"});
}

TEST_F(SafetensorsBad, TruncatedFile) {
  expect_contains(open_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 6),
                  {kFile, "truncated", "'a' ends at 8", "data buffer is 6 bytes", "2 bytes missing"});
}

TEST_F(SafetensorsBad, HugeConsistentTensorIsTruncatedNotRead) {
  // Shape, dtype and offsets agree, so only the buffer-length check stands between this header
  // and a read 2^60 bytes past the mapping.
  const std::string h = R"({"a": {"dtype": "U8", "shape": [1152921504606846976],)"
                        R"( "data_offsets": [0, 1152921504606846976]}})";
  expect_contains(open_error(h, 16), {kFile, "truncated", "'a' ends at 1152921504606846976"});
}

TEST_F(SafetensorsBad, InvalidUtf8InHeader) {
  const std::string h = "{\"w\xff\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}";
  expect_contains(open_error(h, 2), {kFile, "header is not valid UTF-8", "0xFF", "offset 3"});
}

TEST_F(SafetensorsBad, OverlongUtf8InHeader) {
  const std::string h = "{\"w\xc0\xaf\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}";
  expect_contains(open_error(h, 2), {kFile, "header is not valid UTF-8", "0xC0"});
}

TEST_F(SafetensorsBad, EncodedSurrogateInHeader) {
  const std::string h = "{\"w\xed\xa0\x80\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}";
  expect_contains(open_error(h, 2), {kFile, "header is not valid UTF-8", "0xED"});
}

TEST_F(SafetensorsBad, LoneSurrogateEscapeInHeader) {
  const std::string h = R"({"w\ud800": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}})";
  expect_contains(open_error(h, 2), {kFile, "header is not valid JSON", "surrogate"});
}

TEST_F(SafetensorsBad, MetadataNonStringValue) {
  expect_contains(open_error(R"({"__metadata__": {"format": "pt", "step": 3}})", 0),
                  {kFile, "__metadata__", "'step'", "must map to a string", "number"});
}

TEST_F(SafetensorsBad, MetadataNotAnObject) {
  expect_contains(open_error(R"({"__metadata__": "pt"})", 0), {kFile, "__metadata__", "must be an object of strings"});
}

TEST_F(SafetensorsBad, NotARegularFile) {
  expect_contains(test::error_of([&] { SafetensorsFile::open(dir_.path()); }),
                  {dir_.path().string(), "not a regular file"});
}

TEST_F(SafetensorsBad, MissingFile) {
  expect_contains(test::error_of([&] { SafetensorsFile::open(dir_ / "nope.safetensors"); }),
                  {"nope.safetensors", "cannot open", "No such file or directory"});
}

// ---- valid files ------------------------------------------------------------------------------

class SafetensorsGood : public ::testing::Test {
 protected:
  test::TempDir dir_;
  std::filesystem::path file_ = dir_ / "good.safetensors";
};

TEST_F(SafetensorsGood, EmptyHeaderNoTensors) {
  write_raw_st(file_, "{}      ", 0);
  const auto st = SafetensorsFile::open(file_);
  EXPECT_TRUE(st.entries().empty());
  EXPECT_TRUE(st.metadata().empty());
}

TEST_F(SafetensorsGood, EntriesInHeaderOrderAndViews) {
  const std::string h = R"({"z": {"dtype": "U8", "shape": [2], "data_offsets": [6, 8]},)"
                        R"( "a": {"dtype": "I16", "shape": [3], "data_offsets": [0, 6]}})";
  write_raw_st(file_, h, 8);
  const auto st = SafetensorsFile::open(file_);
  ASSERT_EQ(st.entries().size(), 2u);
  EXPECT_EQ(st.entries()[0].name, "z");
  EXPECT_EQ(st.entries()[1].name, "a");
  const TensorView z = st.view("z");
  EXPECT_EQ(z.name, "z");
  EXPECT_EQ(z.file, file_.string());
  EXPECT_EQ(z.dtype, DType::kU8);
  EXPECT_EQ(z.shape, (std::vector<int64_t>{2}));
  ASSERT_EQ(z.nbytes, 2u);
  EXPECT_EQ(static_cast<const uint8_t*>(z.data)[0], 6);
  EXPECT_EQ(static_cast<const uint8_t*>(z.data)[1], 7);
  const TensorView a = st.view("a");
  EXPECT_EQ(a.numel(), 3);
  EXPECT_EQ(a.nbytes, 6u);
  EXPECT_EQ(static_cast<const uint8_t*>(a.data)[0], 0);
  EXPECT_EQ(st.find("missing"), nullptr);
  ASSERT_NE(st.find("a"), nullptr);
  EXPECT_EQ(st.find("a")->begin, 0u);
}

TEST_F(SafetensorsGood, ViewOfUnknownTensorNamesFileAndTensor) {
  write_raw_st(file_, "{}", 0);
  const auto st = SafetensorsFile::open(file_);
  EXPECT_EQ(test::error_of([&] { st.view("nope"); }), file_.string() + ": tensor 'nope' not found");
}

TEST_F(SafetensorsGood, ZeroSizeTensorsAnywhere) {
  const std::string h = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                        R"( "empty_mid": {"dtype": "F32", "shape": [0, 4], "data_offsets": [8, 8]},)"
                        R"( "b": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]},)"
                        R"( "empty_end": {"dtype": "BF16", "shape": [3, 0], "data_offsets": [12, 12]},)"
                        R"( "empty_start": {"dtype": "I64", "shape": [0], "data_offsets": [0, 0]}})";
  write_raw_st(file_, h, 12);
  const auto st = SafetensorsFile::open(file_);
  EXPECT_EQ(st.view("empty_mid").nbytes, 0u);
  EXPECT_EQ(st.view("empty_mid").numel(), 0);
  EXPECT_EQ(st.view("empty_end").nbytes, 0u);
  EXPECT_EQ(st.view("empty_start").nbytes, 0u);
  EXPECT_EQ(st.view("b").nbytes, 4u);
}

TEST_F(SafetensorsGood, OnlyZeroSizeTensors) {
  write_raw_st(file_, R"({"e": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}})", 0);
  const auto st = SafetensorsFile::open(file_);
  EXPECT_EQ(st.view("e").nbytes, 0u);
}

TEST_F(SafetensorsGood, ScalarShapeHasOneElement) {
  write_raw_st(file_, R"({"s": {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}})", 8);
  const auto st = SafetensorsFile::open(file_);
  const TensorView s = st.view("s");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.nbytes, 8u);
}

TEST_F(SafetensorsGood, F4PacksTwoElementsPerByte) {
  write_raw_st(file_, R"({"q": {"dtype": "F4", "shape": [2, 3], "data_offsets": [0, 3]}})", 3);
  const auto st = SafetensorsFile::open(file_);
  EXPECT_EQ(st.view("q").nbytes, 3u);
  EXPECT_EQ(st.view("q").dtype, DType::kF4);
}

TEST_F(SafetensorsGood, UnknownEntryFieldsAreIgnoredLikeTheReference) {
  write_raw_st(file_, R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "extra": 1}})", 1);
  EXPECT_EQ(SafetensorsFile::open(file_).view("w").nbytes, 1u);
}

TEST_F(SafetensorsGood, MetadataAndUtf8Names) {
  write_raw_st(file_,
               "{\"__metadata__\": {\"format\": \"pt\", \"\xc3\xa9\": \"\xe2\x82\xac\"},"
               " \"w.\xf0\x9f\x98\x80\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}",
               1);
  const auto st = SafetensorsFile::open(file_);
  EXPECT_EQ(st.metadata().at("format"), "pt");
  EXPECT_EQ(st.metadata().at("\xc3\xa9"), "\xe2\x82\xac");
  EXPECT_NE(st.find("w.\xf0\x9f\x98\x80"), nullptr);
  EXPECT_EQ(st.entries().size(), 1u);  // __metadata__ is not a tensor
}

TEST_F(SafetensorsGood, MoveKeepsViewsValid) {
  write_raw_st(file_, R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})", 4);
  auto st = SafetensorsFile::open(file_);
  const void* before = st.view("w").data;
  const SafetensorsFile moved = std::move(st);
  EXPECT_EQ(moved.view("w").data, before);
  EXPECT_EQ(static_cast<const uint8_t*>(moved.view("w").data)[3], 3);
}

// tests/fixtures/io/python_written.safetensors was written by Python's safetensors 0.8.0 with
// torch 2.15 (not run in CI):
//   save_file({"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1,
//              "b.bias": torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16),
//              "c.half": torch.tensor([[0.5, -1.0], [65504.0, 2.0**-24]], dtype=torch.float16),
//              "d.idx": torch.tensor([-1, 1 << 40], dtype=torch.int64),
//              "e.empty": torch.zeros(0, 4), "f.scalar": torch.tensor(7.0)},
//             "python_written.safetensors", metadata={"format": "pt", "note": "moe io fixture"})
TEST(SafetensorsPython, ReadsFileWrittenByPythonSafetensors) {
  const auto st = SafetensorsFile::open(std::filesystem::path(MOE_TEST_DATA_DIR) / "io" / "python_written.safetensors");
  EXPECT_EQ(st.metadata().at("format"), "pt");
  EXPECT_EQ(st.metadata().at("note"), "moe io fixture");
  ASSERT_EQ(st.entries().size(), 6u);
  // Python orders tensors by dtype alignment, then name; entries() keeps that header order.
  EXPECT_EQ(st.entries()[0].name, "d.idx");

  const TensorView a = st.view("a.weight");
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(load_as_f32(a.data, a.dtype, i), 0.5f * i - 1.0f);

  const TensorView b = st.view("b.bias");
  EXPECT_EQ(b.dtype, DType::kBF16);
  EXPECT_EQ(load_as_f32(b.data, b.dtype, 0), 1.5f);
  EXPECT_EQ(load_as_f32(b.data, b.dtype, 1), -2.0f);
  EXPECT_EQ(load_as_f32(b.data, b.dtype, 2), 3.25f);

  const TensorView c = st.view("c.half");
  EXPECT_EQ(c.dtype, DType::kF16);
  EXPECT_EQ(load_as_f32(c.data, c.dtype, 0), 0.5f);
  EXPECT_EQ(load_as_f32(c.data, c.dtype, 1), -1.0f);
  EXPECT_EQ(load_as_f32(c.data, c.dtype, 2), 65504.0f);
  EXPECT_EQ(load_as_f32(c.data, c.dtype, 3), 0x1p-24f);

  const TensorView d = st.view("d.idx");
  EXPECT_EQ(d.dtype, DType::kI64);
  int64_t idx[2];
  std::memcpy(idx, d.data, sizeof idx);
  EXPECT_EQ(idx[0], -1);
  EXPECT_EQ(idx[1], int64_t{1} << 40);

  EXPECT_EQ(st.view("e.empty").shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(st.view("e.empty").nbytes, 0u);
  EXPECT_TRUE(st.view("f.scalar").shape.empty());
  EXPECT_EQ(load_as_f32(st.view("f.scalar").data, DType::kF32, 0), 7.0f);
}

TEST(ShapeStr, Formats) {
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_EQ(shape_str({7}), "[7]");
  EXPECT_EQ(shape_str({4, 64}), "[4, 64]");
}

}  // namespace
}  // namespace moe
