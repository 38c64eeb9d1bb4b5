// GgufFile: every malformed-file case the reader must reject (each message names the file, the
// key or tensor where there is one, and the problem), valid files of versions 2 and 3 with
// alignments other than 32, the typed accessors, tensor data pointers, the ggml type table, and
// an independent oracle: a file written by ggml's gguf-py and what gguf-py's reader reads back
// (tests/fixtures/gguf/make_gguf_fixtures.py).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/common/dtype.h"
#include "runtime/io/gguf.h"
#include "tests/io/gguf_builder.h"

namespace moe {
namespace {

using test::expect_contains;
using test::GgufKv;
using test::GgufSpec;
using test::GgufTi;
using test::le;

constexpr const char* kFile = "bad.gguf";
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

class GgufTest : public ::testing::Test {
 protected:
  GgufFile open(const GgufSpec& s) {
    test::write_gguf(file_, s);
    return GgufFile::open(file_);
  }
  std::string open_error(const GgufSpec& s) {
    test::write_gguf(file_, s);
    return open_error();
  }
  // Writes the header only (no padding, no data), so that the bytes left are exactly those given.
  std::string open_error_header(const GgufSpec& s) { return open_error_bytes(test::gguf_header_bytes(s)); }
  std::string open_error_bytes(const std::string& bytes) {
    test::write_bytes(file_, bytes);
    return open_error();
  }
  std::string open_error() {
    return test::error_of([&] { GgufFile::open(file_); });
  }

  test::TempDir dir_;
  std::filesystem::path file_ = dir_ / kFile;
};

// ---- the fixed header ---------------------------------------------------------------------------

class GgufBad : public GgufTest {};

TEST_F(GgufBad, EmptyFile) {
  expect_contains(open_error_bytes(""), {kFile, "is 0 bytes", "too short"});
}

TEST_F(GgufBad, FileShorterThanHeader) {
  const std::string bytes = test::gguf_header_bytes(GgufSpec{}).substr(0, 20);
  expect_contains(open_error_bytes(bytes), {kFile, "is 20 bytes", "too short for a GGUF header (24 bytes)"});
}

TEST_F(GgufBad, WrongMagic) {
  GgufSpec s;
  s.magic = "GGUX";
  expect_contains(open_error(s), {kFile, "not a GGUF file", "magic is \"GGUX\"", "47 47 55 58", "expected \"GGUF\""});
}

TEST_F(GgufBad, SafetensorsFileIsNotGguf) {
  expect_contains(open_error_bytes(test::le_u64(2) + "{}"), {kFile, "not a GGUF file", "\\x02\\x00"});
}

TEST_F(GgufBad, Version1Refused) {
  GgufSpec s;
  s.version = 1;
  expect_contains(open_error(s), {kFile, "GGUF version 1 is not supported", "2 and 3"});
}

TEST_F(GgufBad, UnknownVersionRefused) {
  for (const uint32_t v : {0u, 4u, 77u}) {
    GgufSpec s;
    s.version = v;
    expect_contains(open_error(s), {kFile, "unsupported GGUF version " + std::to_string(v), "supported: 2 and 3"});
  }
}

TEST_F(GgufBad, BigEndianFileRefused) {
  GgufSpec s;
  s.version = 0x03000000;  // 3 as a big-endian writer stores it
  expect_contains(open_error(s), {kFile, "0x03000000", "3 byte-swapped", "big-endian", "only little-endian"});
}

TEST_F(GgufBad, KvCountLargerThanFile) {
  GgufSpec s;
  s.kv_count = 1000;
  expect_contains(open_error(s), {kFile, "kv count 1000", "larger than the file could hold"});
}

TEST_F(GgufBad, KvCountHugeDoesNotAllocate) {
  GgufSpec s;
  s.kv_count = kU64Max;
  expect_contains(open_error(s), {kFile, "kv count 18446744073709551615", "larger than the file could hold"});
}

TEST_F(GgufBad, TensorCountLargerThanFile) {
  GgufSpec s;
  s.tensor_count = uint64_t{1} << 40;
  expect_contains(open_error(s), {kFile, "tensor count 1099511627776", "larger than the file could hold"});
}

TEST_F(GgufBad, KvCountBeyondKeysPresent) {
  GgufSpec s;
  s.kvs = {test::kv_u32("a", 1)};
  s.kv_count = 2;
  s.data = std::string(64, '\0');  // enough bytes for the count check; key #1 reads zeros
  expect_contains(open_error(s), {kFile, "metadata key #1", "is empty"});
}

// A spec with no keys or tensors but the counts given (what follows is written by the test).
GgufSpec counts_only(uint64_t n_kv, uint64_t n_tensors) {
  GgufSpec s;
  s.kv_count = n_kv;
  s.tensor_count = n_tensors;
  return s;
}

// ---- keys and values ----------------------------------------------------------------------------

TEST_F(GgufBad, KeyLengthPastEndOfFile) {
  std::string bytes = test::gguf_header_bytes(counts_only(1, 0));
  bytes += le(uint64_t{1000}) + "abc" + std::string(20, '\0');
  expect_contains(open_error_bytes(bytes), {kFile, "metadata key #0 at offset 24", "key length 1000",
                                            "runs past the end of the file", "23 bytes left"});
}

TEST_F(GgufBad, KeyLengthHugeDoesNotOverflow) {
  std::string bytes = test::gguf_header_bytes(counts_only(1, 0));
  bytes += le(kU64Max) + std::string(20, '\0');
  expect_contains(open_error_bytes(bytes),
                  {kFile, "metadata key #0", "key length 18446744073709551615", "runs past the end of the file"});
}

TEST_F(GgufBad, EmptyKey) {
  GgufSpec s;
  s.kvs = {test::kv_u32("ok", 1), test::kv_u32("", 2)};
  expect_contains(open_error(s), {kFile, "metadata key #1", "is empty"});
}

TEST_F(GgufBad, KeyNotUtf8) {
  GgufSpec s;
  s.kvs = {test::kv_u32("bad\xFF key", 1)};
  expect_contains(open_error(s), {kFile, "metadata key #0", "'bad\\xFF key'", "not valid UTF-8", "position 3"});
}

TEST_F(GgufBad, KeyNotUtf8LongIsCutInTheMessage) {
  GgufSpec s;
  s.kvs = {test::kv_u32(std::string(100, 'k') + "\xFF" + std::string(100, 'k'), 1)};
  const std::string msg = open_error(s);
  expect_contains(msg, {kFile, "metadata key #0", "... (201 bytes)", "not valid UTF-8", "position 100"});
  EXPECT_LT(msg.size(), 250u) << msg;
}

TEST_F(GgufBad, KeyOverlongUtf8) {
  GgufSpec s;
  s.kvs = {test::kv_u32("\xC0\xAF", 1)};  // overlong '/'
  expect_contains(open_error(s), {kFile, "metadata key #0", "not valid UTF-8"});
}

TEST_F(GgufBad, RepeatedKey) {
  GgufSpec s;
  s.kvs = {test::kv_u32("general.x", 1), test::kv_str("other", "v"), test::kv_i32("general.x", 2)};
  expect_contains(open_error(s), {kFile, "metadata key 'general.x' is repeated"});
}

TEST_F(GgufBad, UnknownValueType) {
  GgufSpec s;
  s.kvs = {GgufKv{"weird", 13, le(uint32_t{0})}};
  expect_contains(open_error(s), {kFile, "metadata key 'weird'", "unknown value type 13"});
}

TEST_F(GgufBad, ValueTruncated) {
  GgufSpec s;
  s.kvs = {GgufKv{"n", test::kGU64, "\1\2\3"}};
  expect_contains(open_error_header(s),
                  {kFile, "metadata key 'n'", "file truncated", "u64 value needs 8 bytes", "only 3 left"});
}

TEST_F(GgufBad, ValueTypeTruncated) {
  std::string bytes = test::gguf_header_bytes(counts_only(1, 0));
  bytes += test::gguf_str("general.name") + std::string("\4\0", 2);
  expect_contains(open_error_bytes(bytes),
                  {kFile, "metadata key 'general.name'", "file truncated", "value type needs 4 bytes", "only 2 left"});
}

TEST_F(GgufBad, StringValuePastEndOfFile) {
  GgufSpec s;
  s.kvs = {GgufKv{"general.name", test::kGString, le(uint64_t{500}) + "short"}};
  expect_contains(open_error(s),
                  {kFile, "metadata key 'general.name'", "string length 500", "runs past the end of the file"});
}

TEST_F(GgufBad, BoolNotZeroOrOne) {
  GgufSpec s;
  s.kvs = {GgufKv{"flag", test::kGBool, "\2"}};
  expect_contains(open_error(s), {kFile, "metadata key 'flag'", "bool value is 2", "expected 0 or 1"});
}

TEST_F(GgufBad, UnknownArrayElementType) {
  GgufSpec s;
  s.kvs = {GgufKv{"arr", test::kGArray, test::arr_bytes(42, 0, "")}};
  expect_contains(open_error(s), {kFile, "metadata key 'arr'", "unknown array element type 42"});
}

TEST_F(GgufBad, ArrayCountLargerThanFile) {
  GgufSpec s;
  s.kvs = {GgufKv{"arr", test::kGArray, test::arr_bytes(test::kGU32, 100, std::string(16, '\0'))}};
  expect_contains(open_error_header(s), {kFile, "metadata key 'arr'", "array count 100 of u32", "at least 4 bytes each",
                                         "larger than the 16 bytes left"});
}

TEST_F(GgufBad, ArrayCountHugeDoesNotAllocate) {
  GgufSpec s;
  s.kvs = {GgufKv{"arr", test::kGArray, test::arr_bytes(test::kGU8, kU64Max, "xyz")}};
  expect_contains(open_error_header(s), {kFile, "metadata key 'arr'", "array count 18446744073709551615 of u8",
                                         "larger than the 3 bytes left"});
}

TEST_F(GgufBad, StringArrayCountCheckedAgainstMinimumStringSize) {
  // 10 strings take at least 10 * 8 bytes (their lengths); 40 bytes are left.
  GgufSpec s;
  s.kvs = {GgufKv{"tokenizer.ggml.tokens", test::kGArray, test::arr_bytes(test::kGString, 10, std::string(40, 'a'))}};
  expect_contains(open_error_header(s), {kFile, "metadata key 'tokenizer.ggml.tokens'", "array count 10 of string",
                                         "at least 8 bytes each", "larger than the 40 bytes left"});
}

TEST_F(GgufBad, StringInArrayPastEndOfFile) {
  GgufSpec s;
  const std::string elems = test::gguf_str("ok") + le(uint64_t{1000}) + "tail";
  s.kvs = {GgufKv{"tokenizer.ggml.tokens", test::kGArray, test::arr_bytes(test::kGString, 2, elems)}};
  expect_contains(open_error_header(s), {kFile, "metadata key 'tokenizer.ggml.tokens'[1]", "string length 1000",
                                         "runs past the end of the file", "4 bytes left"});
}

TEST_F(GgufBad, ArrayElementsPastEndOfFile) {
  GgufSpec s;
  s.kvs = {GgufKv{"a", test::kGArray, test::arr_bytes(test::kGI32, 1, "\1\2\3")}};
  expect_contains(open_error_header(s), {kFile, "metadata key 'a'", "array count 1 of i32", "3 bytes left"});
  // In a nested array the inner array's count is checked too, and the message says which one.
  GgufSpec t;
  const std::string inner = test::arr_bytes(test::kGI32, 2, std::string(8, '\0')) + le(uint32_t{test::kGI32}) +
                            le(uint64_t{1});  // the second inner array: count 1, its i32 missing
  t.kvs = {GgufKv{"nested", test::kGArray, test::arr_bytes(test::kGArray, 2, inner)}};
  expect_contains(open_error_header(t), {kFile, "metadata key 'nested'[1]", "array count 1 of i32", "0 bytes left"});
}

// `levels` arrays, each holding the next; the innermost holds one u8.
std::string nested_arrays(int levels) {
  std::string v = test::arr_bytes(test::kGU8, 1, "\7");
  for (int i = 1; i < levels; ++i) v = test::arr_bytes(test::kGArray, 1, v);
  return v;
}

TEST_F(GgufBad, ArraysNestedTooDeep) {
  GgufSpec s;
  s.kvs = {GgufKv{"deep", test::kGArray, nested_arrays(9)}};
  expect_contains(open_error(s), {kFile, "metadata key 'deep'[0][0][0][0][0][0][0][0]", "nested more than 8 deep"});
}

TEST_F(GgufTest, ArraysNestedEightDeepAreRead) {
  GgufSpec s;
  s.kvs = {GgufKv{"deep", test::kGArray, nested_arrays(8)}};
  const GgufFile f = open(s);
  const GgufValue* v = f.find("deep");
  ASSERT_NE(v, nullptr);
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(v->type, GgufValueType::kArray);
    ASSERT_EQ(v->elem_type, GgufValueType::kArray);
    v = &std::get<std::vector<GgufValue>>(v->v).at(0);
  }
  EXPECT_EQ(v->elem_type, GgufValueType::kU8);
  EXPECT_EQ(std::get<uint64_t>(std::get<std::vector<GgufValue>>(v->v).at(0).v), 7u);
}

TEST_F(GgufBad, AlignmentNotU32) {
  GgufSpec s;
  s.kvs = {test::kv_i32("general.alignment", 32)};
  expect_contains(open_error(s), {kFile, "metadata key 'general.alignment'", "must be a u32, found i32"});
}

TEST_F(GgufBad, AlignmentNotPowerOfTwo) {
  for (const uint32_t a : {0u, 3u, 48u}) {
    GgufSpec s;
    s.kvs = {test::kv_u32("general.alignment", a)};
    expect_contains(open_error(s), {kFile, "metadata key 'general.alignment'",
                                    "alignment " + std::to_string(a) + " is not a power of two"});
  }
}

// ---- tensor infos -------------------------------------------------------------------------------

GgufSpec one_f32(std::vector<uint64_t> dims = {4}) {
  GgufSpec s;
  uint64_t n = 1;
  for (const auto d : dims) n *= d;
  s.add_f32("w", std::move(dims), std::vector<float>(n, 1.0f));
  return s;
}

TEST_F(GgufBad, TensorNameEmpty) {
  GgufSpec s = one_f32();
  s.tensors[0].name = "";
  expect_contains(open_error(s), {kFile, "tensor name #0", "is empty"});
}

TEST_F(GgufBad, TensorNameNotUtf8) {
  GgufSpec s = one_f32();
  s.tensors[0].name = "blk.\xED\xA0\x80.w";  // a UTF-16 surrogate
  expect_contains(open_error(s), {kFile, "tensor name #0", "blk.\\xED\\xA0\\x80.w", "not valid UTF-8"});
}

TEST_F(GgufBad, TensorNameLengthPastEndOfFile) {
  expect_contains(
      open_error_bytes(test::gguf_header_bytes(counts_only(0, 1)) + le(uint64_t{999}) + std::string(30, 'n')),
      {kFile, "tensor #0 at offset 24", "tensor name length 999", "runs past the end"});
}

TEST_F(GgufBad, TensorNameRepeated) {
  GgufSpec s;
  s.add_f32("w", {2}, {1, 2});
  s.add_f32("v", {2}, {1, 2});
  s.add_f32("w", {2}, {1, 2});
  expect_contains(open_error(s), {kFile, "tensor 'w' is repeated"});
}

TEST_F(GgufBad, NDimsZero) {
  GgufSpec s = one_f32();
  s.tensors[0].dims = {};
  expect_contains(open_error(s), {kFile, "tensor 'w'", "n_dims is 0, expected 1..4"});
}

TEST_F(GgufBad, NDimsAboveFour) {
  GgufSpec s = one_f32({1, 1, 1, 1});
  s.tensors[0].dims = {1, 1, 1, 1, 4};
  expect_contains(open_error(s), {kFile, "tensor 'w'", "n_dims is 5, expected 1..4"});
}

TEST_F(GgufBad, DimsTruncated) {
  GgufSpec s = one_f32();
  s.kvs = {test::kv_u32("a", 1)};
  s.tensors[0].n_dims = 4;  // says 4, writes 1: the dims would run past the end of the file
  expect_contains(open_error_header(s), {kFile, "tensor 'w'", "file truncated", "dims needs 32 bytes"});
}

TEST_F(GgufBad, TensorInfoTruncated) {
  GgufSpec s = one_f32();
  s.kvs = {test::kv_u32("a", 1)};  // so that the tensor count fits the shortened file
  std::string bytes = test::gguf_header_bytes(s);
  bytes.resize(bytes.size() - 5);  // 3 of the offset's 8 bytes left
  expect_contains(open_error_bytes(bytes), {kFile, "tensor 'w'", "file truncated", "offset needs 8 bytes"});
}

TEST_F(GgufBad, ZeroDim) {
  GgufSpec s = one_f32({4, 1});
  s.tensors[0].dims = {4, 0};
  expect_contains(open_error(s), {kFile, "tensor 'w'", "dims [4, 0]", "dim 1 is 0"});
}

TEST_F(GgufBad, ElementCountOverflow) {
  GgufSpec s = one_f32();
  s.tensors[0].dims = {uint64_t{1} << 32, uint64_t{1} << 32};
  expect_contains(open_error(s), {kFile, "tensor 'w'", "dims [4294967296, 4294967296]", "too many elements"});
}

TEST_F(GgufBad, ByteCountOverflow) {
  GgufSpec s = one_f32();
  s.tensors[0].dims = {uint64_t{1} << 62};  // 2^62 elements fit an int64; 2^64 bytes do not
  expect_contains(open_error(s), {kFile, "tensor 'w'", "of F32 take too many bytes (overflow)"});
}

TEST_F(GgufBad, UnknownGgmlType) {
  for (const uint32_t type : {4u, 31u, 36u, 42u, 1000u}) {
    GgufSpec s = one_f32();
    s.tensors[0].type = type;
    expect_contains(open_error(s), {kFile, "tensor 'w'", "unknown ggml type " + std::to_string(type)});
  }
}

TEST_F(GgufBad, FirstDimNotMultipleOfBlock) {
  GgufSpec s;
  s.add_tensor("blk.0.ffn_down.weight", {100, 2}, 12, std::string(288, '\0'));  // Q4_K
  expect_contains(open_error(s), {kFile, "tensor 'blk.0.ffn_down.weight'", "dims[0] = 100",
                                  "not a multiple of the Q4_K block of 256 elements"});
}

TEST_F(GgufBad, OffsetNotAligned) {
  GgufSpec s;
  s.add_f32("a", {4}, {1, 2, 3, 4});
  s.add_f32("b", {4}, {1, 2, 3, 4});
  s.tensors[1].offset = 16;
  expect_contains(open_error(s), {kFile, "tensor 'b'", "offset 16 is not a multiple of the alignment 32"});
}

TEST_F(GgufBad, DataPastEndOfFile) {
  GgufSpec s = one_f32({4});
  s.data.resize(12);  // 16 bytes needed
  expect_contains(open_error(s), {kFile, "tensor 'w'", "data [0, 0 + 16)", "runs past the end of the file"});
}

TEST_F(GgufBad, HugeOffsetDoesNotOverflow) {
  GgufSpec s = one_f32({4});
  s.tensors[0].offset = kU64Max - 31;  // a multiple of 32
  expect_contains(open_error(s), {kFile, "tensor 'w'", "runs past the end of the file"});
}

TEST_F(GgufBad, TensorsOverlap) {
  GgufSpec s;
  s.add_f32("a", {16}, std::vector<float>(16, 1.0f));  // [0, 64)
  s.add_f32("b", {16}, std::vector<float>(16, 2.0f));  // [64, 128)
  s.tensors[1].offset = 32;
  expect_contains(open_error(s), {kFile, "tensor 'b'", "data [32, 96)", "overlaps tensor 'a' at [0, 64)"});
}

TEST_F(GgufBad, OverlapFoundWhateverTheFileOrder) {
  GgufSpec s;
  s.add_f32("a", {16}, std::vector<float>(16, 1.0f));
  s.add_f32("b", {8}, std::vector<float>(8, 2.0f));
  s.add_f32("c", {8}, std::vector<float>(8, 2.0f));
  s.tensors[0].offset = 96;  // a: [96, 160) overlaps c: [128, 160)
  s.data.resize(160);
  expect_contains(open_error(s), {kFile, "tensor 'c'", "data [96, 128)", "overlaps tensor 'a' at [96, 160)"});
}

// ---- valid files --------------------------------------------------------------------------------

TEST_F(GgufTest, EmptyFileOfVersion3) {
  const GgufFile f = open(GgufSpec{});
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 32u);  // the 24-byte header padded to 32
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.path(), file_);
}

TEST_F(GgufTest, NoTensorsAndNoPaddingAtTheEnd) {
  GgufSpec s;
  s.kvs = {test::kv_str("general.architecture", "llama")};
  test::write_bytes(file_, test::gguf_header_bytes(s));  // ends before the data section begins
  const GgufFile f = GgufFile::open(file_);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
}

GgufSpec sample_spec(uint32_t version) {
  GgufSpec s;
  s.version = version;
  s.kvs = {test::kv_str("general.architecture", "llama"), test::kv_u32("llama.expert_count", 8),
           test::kv_str_arr("tokenizer.ggml.tokens", {"<s>", "</s>", "\xE2\x96\x81the"})};
  s.add_f32("token_embd.weight", {2, 3}, {1, 2, 3, 4, 5, 6});
  s.add_f32("output_norm.weight", {2}, {0.5f, -0.5f});
  return s;
}

TEST_F(GgufTest, Version2AndVersion3ReadAlike) {
  for (const uint32_t version : {2u, 3u}) {
    SCOPED_TRACE(version);
    const GgufFile f = open(sample_spec(version));
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.get_u64("llama.expert_count"), 8u);
    EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"),
              (std::vector<std::string>{"<s>", "</s>", "\xE2\x96\x81the"}));
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.tensors()[0].name, "token_embd.weight");
    EXPECT_EQ(f.tensors()[0].dims, (std::vector<uint64_t>{2, 3}));
    EXPECT_EQ(f.tensors()[0].nbytes, 24u);
    EXPECT_EQ(f.tensors()[1].offset, 32u);
    float v[2];
    std::memcpy(v, f.tensor_data(*f.find_tensor("output_norm.weight")), sizeof v);
    EXPECT_EQ(v[0], 0.5f);
    EXPECT_EQ(v[1], -0.5f);
  }
}

TEST_F(GgufTest, TensorDataPointsIntoTheDataSection) {
  const GgufSpec s = sample_spec(3);
  const GgufFile f = open(s);
  const uint64_t header = test::gguf_header_bytes(s).size();
  EXPECT_EQ(f.data_offset(), (header + 31) / 32 * 32);
  const GgufTensorInfo* t = f.find_tensor("token_embd.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
  const std::string bytes = test::read_file_bytes(file_);
  const uint8_t* base = f.tensor_data(f.tensors()[0]);
  EXPECT_EQ(base, f.tensor_data(*t));
  EXPECT_EQ(std::memcmp(base, bytes.data() + f.data_offset(), 24), 0);
  EXPECT_EQ(f.tensor_data(f.tensors()[1]) - base, 32);
  for (int i = 0; i < 6; ++i) {
    float x = 0;
    std::memcpy(&x, base + 4 * i, 4);
    EXPECT_EQ(x, static_cast<float>(i + 1));
  }
}

TEST_F(GgufTest, TensorDataRefusesAnInfoFromElsewhere) {
  const GgufFile f = open(sample_spec(3));
  GgufTensorInfo foreign = f.tensors()[0];
  foreign.name = "foreign";
  foreign.offset = 1 << 20;
  expect_contains(test::error_of([&] { f.tensor_data(foreign); }),
                  {kFile, "tensor 'foreign'", "lies outside the data section"});
}

TEST_F(GgufTest, CustomAlignments) {
  for (const uint32_t a : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(a);
    GgufSpec s;
    s.alignment = a;
    s.kvs = {test::kv_u32("general.alignment", a)};
    s.add_f32("a", {3}, {1, 2, 3});
    s.add_f32("b", {1}, {4});
    const GgufFile f = open(s);
    EXPECT_EQ(f.alignment(), a);
    const uint64_t header = test::gguf_header_bytes(s).size();
    EXPECT_EQ(f.data_offset(), (header + a - 1) / a * a);
    EXPECT_EQ(f.data_offset() % a, 0u);
    EXPECT_EQ(f.tensors()[1].offset, (12 + a - 1) / a * a);
    float b = 0;
    std::memcpy(&b, f.tensor_data(f.tensors()[1]), 4);
    EXPECT_EQ(b, 4.0f);
  }
}

TEST_F(GgufBad, OffsetAlignedTo32ButNot64) {
  GgufSpec s;
  s.alignment = 64;
  s.kvs = {test::kv_u32("general.alignment", 64)};
  s.add_f32("a", {4}, {1, 2, 3, 4});
  s.add_f32("b", {4}, {1, 2, 3, 4});
  s.tensors[1].offset = 32;
  expect_contains(open_error(s), {kFile, "tensor 'b'", "offset 32 is not a multiple of the alignment 64"});
}

TEST_F(GgufTest, QuantizedTensorSizes) {
  GgufSpec s;
  s.add_tensor("q4_k", {512, 3}, 12, std::string(2 * 144 * 3, '\1'));
  s.add_tensor("q8_0", {64, 2, 2}, 8, std::string(2 * 34 * 4, '\2'));
  s.add_tensor("mxfp4", {32, 1, 1, 5}, 39, std::string(17 * 5, '\3'));
  const GgufFile f = open(s);
  EXPECT_EQ(f.find_tensor("q4_k")->nbytes, 864u);
  EXPECT_EQ(f.find_tensor("q8_0")->nbytes, 272u);
  EXPECT_EQ(f.find_tensor("mxfp4")->nbytes, 85u);
  EXPECT_EQ(f.find_tensor("mxfp4")->dims, (std::vector<uint64_t>{32, 1, 1, 5}));
  EXPECT_EQ(f.tensor_data(*f.find_tensor("q8_0"))[0], 2);
}

TEST_F(GgufTest, EveryGgmlTypeIsReadAndSized) {
  GgufSpec s;
  std::vector<std::pair<uint32_t, uint64_t>> expected;  // type, nbytes
  for (uint32_t type = 0; type < 64; ++type) {
    const auto info = ggml_type_info(type);
    if (!info) continue;
    const uint64_t nbytes = 2 * info->block_bytes * 3;
    s.add_tensor(std::string(info->name), {2 * static_cast<uint64_t>(info->block_elems), 3}, type,
                 std::string(nbytes, '\0'));
    expected.emplace_back(type, nbytes);
  }
  ASSERT_EQ(expected.size(), 34u);
  const GgufFile f = open(s);
  ASSERT_EQ(f.tensors().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f.tensors()[i].ggml_type, expected[i].first);
    EXPECT_EQ(f.tensors()[i].nbytes, expected[i].second) << f.tensors()[i].name;
  }
}

TEST(GgmlTypeInfo, KnownAndUnknownIds) {
  ASSERT_TRUE(ggml_type_info(0));
  EXPECT_EQ(ggml_type_info(0)->name, "F32");
  EXPECT_EQ(ggml_type_info(0)->block_bytes, 4u);
  EXPECT_EQ(ggml_type_info(12)->name, "Q4_K");
  EXPECT_EQ(ggml_type_info(12)->block_elems, 256);
  EXPECT_EQ(ggml_type_info(12)->block_bytes, 144u);
  EXPECT_EQ(ggml_type_info(30)->name, "BF16");
  EXPECT_EQ(ggml_type_info(39)->name, "MXFP4");
  EXPECT_EQ(ggml_type_info(39)->block_bytes, 17u);
  for (const uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 42u, 0xFFFFFFFFu}) {
    EXPECT_FALSE(ggml_type_info(removed)) << removed;
  }
}

TEST(GgufValueTypeName, EveryType) {
  const std::vector<std::string_view> names = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  for (uint32_t t = 0; t < names.size(); ++t) {
    EXPECT_EQ(gguf_value_type_name(static_cast<GgufValueType>(t)), names[t]);
  }
}

// ---- typed accessors ----------------------------------------------------------------------------

class GgufAccessors : public GgufTest {
 protected:
  void SetUp() override {
    GgufSpec s;
    s.kvs = {
        test::kv_u8("u8", 200),
        test::kv_i8("i8", -5),
        test::kv_i8("i8_pos", 5),
        test::kv_u16("u16", 65535),
        test::kv_i16("i16", -300),
        test::kv_u32("u32", 4000000000u),
        test::kv_i32("i32", -7),
        test::kv_u64("u64_big", kU64Max),
        test::kv_i64("i64", std::numeric_limits<int64_t>::min()),
        test::kv_f32("f32", 0.25f),
        test::kv_f64("f64", 1e-300),
        test::kv_bool("yes", true),
        test::kv_bool("no", false),
        test::kv_str("name", "Mixtral \xE2\x9C\x93"),
        test::kv_str("empty", ""),
        test::kv_str_arr("strs", {"a", "", "ccc"}),
        test::kv_arr("i32s", test::kGI32, {le(int32_t{-1}), le(int32_t{7})}),
        test::kv_arr("u8s", test::kGU8, {le(uint8_t{0}), le(uint8_t{255})}),
        test::kv_arr("u64s", test::kGU64, {le(uint64_t{1}), le(kU64Max)}),
        test::kv_arr("f32s", test::kGF32, {le(0.5f), le(-2.0f)}),
        test::kv_arr("f64s", test::kGF64, {le(0.1)}),
        test::kv_arr("empty_arr", test::kGU32, {}),
        test::kv_arr("nested", test::kGArray,
                     {test::arr_bytes(test::kGI32, {le(int32_t{1}), le(int32_t{2})}),
                      test::arr_bytes(test::kGI32, {le(int32_t{3})})}),
    };
    f_.emplace(open(s));
  }
  const GgufFile& f() const { return *f_; }
  std::string err(const std::function<void()>& fn) { return test::error_of(fn); }

  std::optional<GgufFile> f_;
};

TEST_F(GgufAccessors, Scalars) {
  EXPECT_EQ(f().metadata().size(), 23u);
  EXPECT_EQ(f().get_u64("u8"), 200u);
  EXPECT_EQ(f().get_u64("u16"), 65535u);
  EXPECT_EQ(f().get_u64("u32"), 4000000000u);
  EXPECT_EQ(f().get_u64("u64_big"), kU64Max);
  EXPECT_EQ(f().get_u64("i8_pos"), 5u);
  EXPECT_EQ(f().get_i64("i8"), -5);
  EXPECT_EQ(f().get_i64("i16"), -300);
  EXPECT_EQ(f().get_i64("i32"), -7);
  EXPECT_EQ(f().get_i64("u32"), 4000000000);
  EXPECT_EQ(f().get_i64("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f().get_f64("f32"), 0.25);
  EXPECT_EQ(f().get_f64("f64"), 1e-300);
  EXPECT_TRUE(f().get_bool("yes"));
  EXPECT_FALSE(f().get_bool("no"));
  EXPECT_EQ(f().get_string("name"), "Mixtral \xE2\x9C\x93");
  EXPECT_EQ(f().get_string("empty"), "");
  const GgufValue* v = f().find("u16");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, GgufValueType::kU16);
  EXPECT_EQ(std::get<uint64_t>(v->v), 65535u);
  EXPECT_EQ(std::get<int64_t>(f().find("i16")->v), -300);
  EXPECT_TRUE(f().contains("f64"));
  EXPECT_FALSE(f().contains("absent"));
  EXPECT_EQ(f().find("absent"), nullptr);
}

TEST_F(GgufAccessors, OptionalForms) {
  EXPECT_EQ(f().opt_u64("u32"), 4000000000u);
  EXPECT_EQ(f().opt_u64("absent"), std::nullopt);
  EXPECT_EQ(f().opt_i64("i32"), -7);
  EXPECT_EQ(f().opt_i64("absent"), std::nullopt);
  EXPECT_EQ(f().opt_f64("f32"), 0.25);
  EXPECT_EQ(f().opt_f64("absent"), std::nullopt);
  EXPECT_EQ(f().opt_bool("yes"), true);
  EXPECT_EQ(f().opt_bool("absent"), std::nullopt);
  EXPECT_EQ(f().opt_string("name"), "Mixtral \xE2\x9C\x93");
  EXPECT_EQ(f().opt_string("absent"), std::nullopt);
  // Present but of another kind: they throw rather than pretend it is absent.
  expect_contains(err([&] { f().opt_u64("name"); }), {kFile, "metadata key 'name'", "found string"});
  expect_contains(err([&] { f().opt_string("u8"); }), {kFile, "metadata key 'u8'", "expected string, found u8"});
  expect_contains(err([&] { f().opt_bool("u8"); }), {kFile, "metadata key 'u8'", "expected bool, found u8"});
  expect_contains(err([&] { f().opt_f64("i32"); }), {kFile, "metadata key 'i32'", "found i32"});
  expect_contains(err([&] { f().opt_i64("f32"); }), {kFile, "metadata key 'f32'", "found f32"});
}

TEST_F(GgufAccessors, MissingKeyNamed) {
  for (const auto& fn : std::vector<std::function<void()>>{
           [&] { f().get_u64("absent"); }, [&] { f().get_i64("absent"); }, [&] { f().get_f64("absent"); },
           [&] { f().get_bool("absent"); }, [&] { f().get_string("absent"); }, [&] { f().get_string_array("absent"); },
           [&] { f().get_int_array("absent"); }, [&] { f().get_f64_array("absent"); }}) {
    expect_contains(err(fn), {kFile, "metadata key 'absent'", "not found"});
  }
}

TEST_F(GgufAccessors, WrongKindNamesTheTypeFound) {
  expect_contains(err([&] { f().get_u64("f32"); }), {kFile, "metadata key 'f32'", "expected an integer, found f32"});
  expect_contains(err([&] { f().get_u64("yes"); }), {kFile, "metadata key 'yes'", "found bool"});
  expect_contains(err([&] { f().get_i64("strs"); }), {kFile, "metadata key 'strs'", "found array of string"});
  expect_contains(err([&] { f().get_f64("u32"); }), {kFile, "metadata key 'u32'", "expected f32 or f64, found u32"});
  expect_contains(err([&] { f().get_bool("u8"); }), {kFile, "metadata key 'u8'", "expected bool, found u8"});
  expect_contains(err([&] { f().get_string("i32s"); }),
                  {kFile, "metadata key 'i32s'", "expected string, found array of i32"});
}

TEST_F(GgufAccessors, IntegerRange) {
  expect_contains(err([&] { f().get_u64("i8"); }), {kFile, "metadata key 'i8'", "i8 value -5 is negative"});
  expect_contains(err([&] { f().get_u64("i64"); }), {kFile, "metadata key 'i64'", "is negative"});
  expect_contains(err([&] { f().get_i64("u64_big"); }),
                  {kFile, "metadata key 'u64_big'", "u64 value 18446744073709551615 does not fit an i64"});
}

TEST_F(GgufAccessors, Arrays) {
  EXPECT_EQ(f().get_string_array("strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f().get_int_array("i32s"), (std::vector<int64_t>{-1, 7}));
  EXPECT_EQ(f().get_int_array("u8s"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(f().get_f64_array("f32s"), (std::vector<double>{0.5, -2.0}));
  EXPECT_EQ(f().get_f64_array("f64s"), (std::vector<double>{0.1}));
  EXPECT_TRUE(f().get_int_array("empty_arr").empty());
  const GgufValue* v = f().find("empty_arr");
  EXPECT_EQ(v->elem_type, GgufValueType::kU32);
  expect_contains(err([&] { f().get_int_array("u64s"); }),
                  {kFile, "metadata key 'u64s'", "element 1", "does not fit an i64"});
  expect_contains(err([&] { f().get_string_array("i32s"); }),
                  {kFile, "metadata key 'i32s'", "expected an array of string, found array of i32"});
  expect_contains(err([&] { f().get_int_array("strs"); }),
                  {kFile, "metadata key 'strs'", "expected an array of integers, found array of string"});
  expect_contains(err([&] { f().get_f64_array("i32s"); }),
                  {kFile, "metadata key 'i32s'", "expected an array of f32 or f64, found array of i32"});
  expect_contains(err([&] { f().get_int_array("nested"); }), {kFile, "metadata key 'nested'", "found array of array"});
  expect_contains(err([&] { f().get_string_array("name"); }),
                  {kFile, "metadata key 'name'", "expected an array of string, found string"});
}

TEST_F(GgufAccessors, NestedArraysKeepTheirStructure) {
  const GgufValue* v = f().find("nested");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, GgufValueType::kArray);
  EXPECT_EQ(v->elem_type, GgufValueType::kArray);
  const auto& outer = std::get<std::vector<GgufValue>>(v->v);
  ASSERT_EQ(outer.size(), 2u);
  EXPECT_EQ(outer[0].elem_type, GgufValueType::kI32);
  const auto& first = std::get<std::vector<GgufValue>>(outer[0].v);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(std::get<int64_t>(first[1].v), 2);
  EXPECT_EQ(std::get<std::vector<GgufValue>>(outer[1].v).size(), 1u);
}

TEST_F(GgufAccessors, SurvivesAMove) {
  const GgufFile moved = std::move(*f_);
  EXPECT_EQ(moved.get_string("name"), "Mixtral \xE2\x9C\x93");
  EXPECT_EQ(moved.path(), file_);
}

// ---- is_gguf_file -------------------------------------------------------------------------------

TEST_F(GgufTest, IsGgufFile) {
  test::write_gguf(file_, sample_spec(3));
  EXPECT_TRUE(is_gguf_file(file_));
  test::write_bytes(dir_ / "magic_only", "GGUF");
  EXPECT_TRUE(is_gguf_file(dir_ / "magic_only"));  // the magic alone decides; open() validates
  test::write_bytes(dir_ / "short", "GGU");
  EXPECT_FALSE(is_gguf_file(dir_ / "short"));
  test::write_bytes(dir_ / "st", test::le_u64(2) + "{}");
  EXPECT_FALSE(is_gguf_file(dir_ / "st"));
  test::write_bytes(dir_ / "empty", "");
  EXPECT_FALSE(is_gguf_file(dir_ / "empty"));
  EXPECT_FALSE(is_gguf_file(dir_ / "absent"));
  EXPECT_FALSE(is_gguf_file(dir_.path()));  // a directory
  EXPECT_TRUE(is_gguf_file(std::filesystem::path(MOE_TEST_DATA_DIR) / "gguf" / "reader_all_types.gguf"));
}

// ---- the gguf-py oracle -------------------------------------------------------------------------

using Json = nlohmann::json;

// A value as JSON, nested arrays flattened as gguf-py's reader flattens them.
void flatten(const GgufValue& v, Json& out) {
  if (const auto* a = std::get_if<std::vector<GgufValue>>(&v.v)) {
    for (const auto& e : *a) flatten(e, out);
  } else if (const auto* u = std::get_if<uint64_t>(&v.v)) {
    out.push_back(*u);
  } else if (const auto* i = std::get_if<int64_t>(&v.v)) {
    out.push_back(*i);
  } else if (const auto* d = std::get_if<double>(&v.v)) {
    out.push_back(*d);
  } else if (const auto* b = std::get_if<bool>(&v.v)) {
    out.push_back(*b);
  } else if (const auto* s = std::get_if<std::string>(&v.v)) {
    out.push_back(*s);
  } else {
    ADD_FAILURE() << "empty GgufValue";
  }
}

// [type] or [array, (array, ...) element type], as gguf-py's ReaderField.types.
std::vector<int> type_chain(const GgufValue& v) {
  std::vector<int> types{static_cast<int>(v.type)};
  const GgufValue* cur = &v;
  while (cur->type == GgufValueType::kArray) {
    types.push_back(static_cast<int>(cur->elem_type));
    const auto& elems = std::get<std::vector<GgufValue>>(cur->v);
    if (cur->elem_type != GgufValueType::kArray || elems.empty()) break;
    cur = &elems[0];
  }
  return types;
}

uint64_t fnv1a64(const uint8_t* p, uint64_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint64_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001B3ull;
  }
  return h;
}

class GgufOracle : public ::testing::Test {
 protected:
  static Json load_json() {
    std::ifstream in(kDir / "reader_all_types.json");
    EXPECT_TRUE(in.good()) << "cannot read reader_all_types.json";
    return Json::parse(in);
  }
  static inline const std::filesystem::path kDir = std::filesystem::path(MOE_TEST_DATA_DIR) / "gguf";
  Json want_ = load_json();
  GgufFile f_ = GgufFile::open(kDir / "reader_all_types.gguf");
};

TEST_F(GgufOracle, HeaderAgreesWithGgufPy) {
  EXPECT_EQ(f_.version(), want_["version"].get<uint32_t>());
  EXPECT_EQ(f_.alignment(), want_["alignment"].get<uint32_t>());
  EXPECT_EQ(f_.alignment(), 64u);
  EXPECT_EQ(f_.data_offset(), want_["data_offset"].get<uint64_t>());
  EXPECT_EQ(std::filesystem::file_size(f_.path()), want_["file_size"].get<uint64_t>());
}

TEST_F(GgufOracle, MetadataAgreesWithGgufPy) {
  const Json& md = want_["metadata"];
  ASSERT_EQ(f_.metadata().size(), md.size());
  ASSERT_GE(md.size(), 30u);
  for (const Json& kv : md) {
    const std::string key = kv["key"].get<std::string>();
    SCOPED_TRACE(key);
    const GgufValue* v = f_.find(key);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(type_chain(*v), kv["types"].get<std::vector<int>>());
    Json got = Json::array();
    flatten(*v, got);
    const Json want = kv["value"].is_array() ? kv["value"] : Json::array({kv["value"]});
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      if (want[i].is_number_float()) {
        EXPECT_EQ(got[i].get<double>(), want[i].get<double>()) << "element " << i;
      } else {
        EXPECT_EQ(got[i], want[i]) << "element " << i;
      }
    }
  }
  // A few through the typed accessors.
  EXPECT_EQ(f_.get_string("general.architecture"), "llama");
  EXPECT_EQ(f_.get_u64("test.u64"), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(f_.get_f64("test.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(f_.get_string("test.string"), "h\xC3\xA9llo \xE2\x9C\x93 world");
  EXPECT_EQ(f_.get_string_array("test.arr_string"),
            (std::vector<std::string>{"a", "", "\xC3\xBC\xC3\xB1\xC3\xAE", "<0x0A>", "\xE2\x96\x81the"}));
  EXPECT_EQ(f_.get_int_array("test.arr_i64"),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}));
  const auto& nested = std::get<std::vector<GgufValue>>(f_.find("test.nested_i32")->v);
  ASSERT_EQ(nested.size(), 3u);
  EXPECT_EQ(std::get<std::vector<GgufValue>>(nested[0].v).size(), 3u);
  EXPECT_EQ(std::get<std::vector<GgufValue>>(nested[1].v).size(), 1u);
}

TEST_F(GgufOracle, TensorsAgreeWithGgufPy) {
  const Json& ts = want_["tensors"];
  ASSERT_EQ(f_.tensors().size(), ts.size());
  ASSERT_EQ(ts.size(), 6u);
  for (size_t i = 0; i < ts.size(); ++i) {
    const Json& w = ts[i];
    const GgufTensorInfo& t = f_.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, w["name"].get<std::string>());
    EXPECT_EQ(t.ggml_type, w["ggml_type"].get<uint32_t>());
    EXPECT_EQ(ggml_type_info(t.ggml_type)->name, w["type_name"].get<std::string>());
    EXPECT_EQ(t.dims, w["dims"].get<std::vector<uint64_t>>());
    EXPECT_EQ(t.offset, w["offset"].get<uint64_t>());
    EXPECT_EQ(t.nbytes, w["n_bytes"].get<uint64_t>());
    EXPECT_EQ(f_.data_offset() + t.offset, w["file_offset"].get<uint64_t>());
    EXPECT_EQ(t.offset % f_.alignment(), 0u);
    EXPECT_EQ(f_.find_tensor(t.name), &t);
    const uint8_t* p = f_.tensor_data(t);
    EXPECT_EQ(fnv1a64(p, t.nbytes), w["fnv1a64"].get<uint64_t>());
    if (!w.contains("first_values")) continue;
    const auto first = w["first_values"].get<std::vector<double>>();
    for (size_t k = 0; k < first.size(); ++k) {
      float x = 0;
      if (t.ggml_type == 0) {
        std::memcpy(&x, p + 4 * k, 4);
      } else {
        uint16_t h = 0;
        std::memcpy(&h, p + 2 * k, 2);
        x = f16_to_f32(h);
      }
      EXPECT_EQ(static_cast<double>(x), first[k]) << "value " << k;
    }
  }
  // Dims innermost first: numpy shape (2, 3, 4) is stored as {4, 3, 2}.
  EXPECT_EQ(f_.find_tensor("t.f32_3d")->dims, (std::vector<uint64_t>{4, 3, 2}));
}

TEST_F(GgufOracle, TypeTableAgreesWithGgufPy) {
  const Json& sizes = want_["ggml_quant_sizes"];
  for (uint32_t id = 0; id < 256; ++id) {
    SCOPED_TRACE(id);
    const auto info = ggml_type_info(id);
    const auto it = sizes.find(std::to_string(id));
    ASSERT_EQ(info.has_value(), it != sizes.end());
    if (!info) continue;
    EXPECT_EQ(info->name, (*it)[0].get<std::string>());
    EXPECT_EQ(info->block_elems, (*it)[1].get<int64_t>());
    EXPECT_EQ(info->block_bytes, (*it)[2].get<uint64_t>());
  }
}

}  // namespace
}  // namespace moe
