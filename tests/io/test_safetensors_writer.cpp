// SafetensorsWriter: byte-exact round trips through SafetensorsFile for every dtype, the header
// layout Python's safetensors produces, metadata, and the writer's own errors.
#include <gtest/gtest.h>

#include <bit>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "runtime/io/safetensors.h"
#include "tests/io/st_builder.h"

namespace moe {
namespace {

using test::expect_contains;
using test::iota_bytes;

constexpr DType kAllDtypes[] = {
    DType::kF32, DType::kF16,    DType::kBF16,   DType::kF64,    DType::kBool, DType::kU8,
    DType::kI8,  DType::kI16,    DType::kU16,    DType::kI32,    DType::kU32,  DType::kI64,
    DType::kU64, DType::kF8E4M3, DType::kF8E5M2, DType::kF8E8M0, DType::kF4,
};

// The JSON header text of a safetensors file (with its padding).
std::string header_text(const std::filesystem::path& p) {
  const std::string all = test::read_file_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(all.at(static_cast<size_t>(i)));
  return all.substr(8, n);
}

TEST(SafetensorsWriter, EveryDtypeRoundTripsByteExact) {
  test::TempDir dir;
  SafetensorsWriter w;
  std::vector<std::vector<uint8_t>> written;
  for (const DType t : kAllDtypes) {
    const std::vector<int64_t> shape = {3, 2};  // 6 elements: whole bytes even for F4
    const size_t nbytes = static_cast<size_t>(6 * dtype_bits(t) / 8);
    written.push_back(iota_bytes(nbytes, static_cast<uint8_t>(17 * written.size() + 1)));
    w.add(std::string(dtype_name(t)) + ".t", t, shape, written.back());
  }
  w.write(dir / "all.safetensors");

  const auto st = SafetensorsFile::open(dir / "all.safetensors");
  ASSERT_EQ(st.entries().size(), std::size(kAllDtypes));
  for (size_t i = 0; i < std::size(kAllDtypes); ++i) {
    const DType t = kAllDtypes[i];
    const TensorView v = st.view(std::string(dtype_name(t)) + ".t");
    EXPECT_EQ(v.dtype, t) << dtype_name(t);
    EXPECT_EQ(v.shape, (std::vector<int64_t>{3, 2}));
    ASSERT_EQ(v.nbytes, written[i].size()) << dtype_name(t);
    const auto* p = static_cast<const uint8_t*>(v.data);
    EXPECT_EQ(std::vector<uint8_t>(p, p + v.nbytes), written[i]) << dtype_name(t);
  }
}

TEST(SafetensorsWriter, HeaderLayoutMatchesPythonSafetensors) {
  test::TempDir dir;
  SafetensorsWriter w;
  w.add("zeta", DType::kF32, {1, 2, 3}, iota_bytes(24));
  w.add("alpha", DType::kU8, {2}, iota_bytes(2, 100));
  w.set_metadata({{"format", "pt"}});
  w.write(dir / "x.safetensors");

  const std::string h = header_text(dir / "x.safetensors");
  EXPECT_EQ(h.size() % 8, 0u);
  // __metadata__ first, then names sorted; data in the order added (zeta first).
  const std::string json = R"({"__metadata__":{"format":"pt"},)"
                           R"("alpha":{"dtype":"U8","shape":[2],"data_offsets":[24,26]},)"
                           R"("zeta":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  EXPECT_EQ(h, json + std::string(h.size() - json.size(), ' '));
  EXPECT_LT(h.size() - json.size(), 8u);

  const std::string all = test::read_file_bytes(dir / "x.safetensors");
  EXPECT_EQ(all.size(), 8 + h.size() + 26);
  EXPECT_EQ(static_cast<unsigned char>(all[8 + h.size()]), 0);         // zeta's first byte
  EXPECT_EQ(static_cast<unsigned char>(all[8 + h.size() + 24]), 100);  // alpha's first byte
}

TEST(SafetensorsWriter, MatchesPythonSerializeExample) {
  // The byte-exact expectation from huggingface/safetensors' own test_serialization.
  test::TempDir dir;
  std::vector<uint8_t> data;
  for (const float f : {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f}) {
    const auto u = std::bit_cast<uint32_t>(f);
    for (int i = 0; i < 4; ++i) data.push_back(static_cast<uint8_t>(u >> (8 * i)));
  }
  SafetensorsWriter w;
  w.add("attn.0", DType::kF32, {1, 2, 3}, data);
  w.write(dir / "ref.safetensors");
  const std::string expected_header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  const std::string all = test::read_file_bytes(dir / "ref.safetensors");
  EXPECT_EQ(all.substr(0, 8), test::le_u64(64));
  EXPECT_EQ(all.substr(8, 64), expected_header);  // 64 bytes exactly: no padding needed
  EXPECT_EQ(all.substr(72), std::string(data.begin(), data.end()));
}

TEST(SafetensorsWriter, EmptyWriterMatchesPythonEmptyFile) {
  test::TempDir dir;
  SafetensorsWriter().write(dir / "e.safetensors");
  EXPECT_EQ(test::read_file_bytes(dir / "e.safetensors"), test::le_u64(8) + "{}      ");
  EXPECT_TRUE(SafetensorsFile::open(dir / "e.safetensors").entries().empty());
}

TEST(SafetensorsWriter, MetadataRoundTrip) {
  test::TempDir dir;
  SafetensorsWriter w;
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"quote\"and\\slash", "line\nbreak"}, {"\xc3\xa9t\xc3\xa9", "\xe2\x82\xac"}};
  w.set_metadata(meta);
  w.add("w", DType::kBF16, {2}, iota_bytes(4));
  w.write(dir / "m.safetensors");
  const auto st = SafetensorsFile::open(dir / "m.safetensors");
  EXPECT_EQ(st.metadata(), meta);
}

TEST(SafetensorsWriter, ZeroSizeAndScalarTensors) {
  test::TempDir dir;
  SafetensorsWriter w;
  w.add("a", DType::kF32, {2}, iota_bytes(8));
  w.add("empty", DType::kF16, {0, 5}, {});
  w.add("scalar", DType::kI32, {}, iota_bytes(4, 9));
  w.write(dir / "z.safetensors");
  const auto st = SafetensorsFile::open(dir / "z.safetensors");
  EXPECT_EQ(st.view("empty").nbytes, 0u);
  EXPECT_EQ(st.view("empty").shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(st.view("scalar").numel(), 1);
  EXPECT_EQ(static_cast<const uint8_t*>(st.view("scalar").data)[0], 9);
}

TEST(SafetensorsWriter, OverwritesAndLeavesNoTemporary) {
  test::TempDir dir;
  SafetensorsWriter w;
  w.add("a", DType::kU8, {1}, {1});
  w.write(dir / "o.safetensors");
  w.add("b", DType::kU8, {1}, {2});
  w.write(dir / "o.safetensors");
  EXPECT_EQ(SafetensorsFile::open(dir / "o.safetensors").entries().size(), 2u);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(SafetensorsWriter, RejectsDuplicateName) {
  SafetensorsWriter w;
  w.add("a", DType::kU8, {1}, {1});
  expect_contains(test::error_of([&] { w.add("a", DType::kU8, {1}, {1}); }), {"tensor 'a'", "duplicate"});
}

TEST(SafetensorsWriter, RejectsSizeDisagreeingWithShape) {
  SafetensorsWriter w;
  expect_contains(test::error_of([&] {
                    w.add("w", DType::kBF16, {4, 8}, iota_bytes(100));
                  }),
                  {"tensor 'w'", "got 100 bytes", "shape [4, 8] of BF16 needs 64"});
}

TEST(SafetensorsWriter, RejectsNegativeDimAndOddF4) {
  SafetensorsWriter w;
  expect_contains(test::error_of([&] { w.add("n", DType::kU8, {-1}, {}); }), {"tensor 'n'", "invalid"});
  expect_contains(test::error_of([&] { w.add("f", DType::kF4, {3}, {0, 0}); }), {"tensor 'f'", "F4"});
}

TEST(SafetensorsWriter, RejectsReservedName) {
  SafetensorsWriter w;
  expect_contains(test::error_of([&] { w.add("__metadata__", DType::kU8, {1}, {1}); }), {"reserved"});
}

TEST(SafetensorsWriter, RejectsNameThatIsNotUtf8) {
  test::TempDir dir;
  SafetensorsWriter w;
  w.add("bad\xff", DType::kU8, {1}, {1});
  expect_contains(test::error_of([&] { w.write(dir / "u.safetensors"); }),
                  {"u.safetensors", "cannot encode the header"});
  EXPECT_FALSE(std::filesystem::exists(dir / "u.safetensors"));
}

TEST(SafetensorsWriter, UnwritableDirectoryNamesThePath) {
  test::TempDir dir;
  SafetensorsWriter w;
  expect_contains(test::error_of([&] { w.write(dir / "no_such_dir" / "x.safetensors"); }),
                  {"x.safetensors", "cannot create", "No such file or directory"});
}

}  // namespace
}  // namespace moe
