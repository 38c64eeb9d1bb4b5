// ggml_dequantize_row against gguf-py's gguf.quants.dequantize, bit for bit: the fixtures under
// tests/fixtures/ggml are blocks of every ggml type (random bytes with finite f16 scales, and
// gguf.quants.quantize output where gguf-py can quantize the type) with the float32 weights the
// oracle gives for them (tests/fixtures/ggml/make_ggml_blocks.py).
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kernels/quant/ggml_quants.h"
#include "kernels/quant/quant_format.h"

namespace moe {
namespace {

struct GgmlCase {
  QuantType type;
  const char* name;
};
constexpr GgmlCase kCases[] = {
    {QuantType::kGgmlQ4_0, "Q4_0"}, {QuantType::kGgmlQ4_1, "Q4_1"},     {QuantType::kGgmlQ5_0, "Q5_0"},
    {QuantType::kGgmlQ5_1, "Q5_1"}, {QuantType::kGgmlQ8_0, "Q8_0"},     {QuantType::kGgmlQ2_K, "Q2_K"},
    {QuantType::kGgmlQ3_K, "Q3_K"}, {QuantType::kGgmlQ4_K, "Q4_K"},     {QuantType::kGgmlQ5_K, "Q5_K"},
    {QuantType::kGgmlQ6_K, "Q6_K"}, {QuantType::kGgmlIQ4_XS, "IQ4_XS"},
};

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class GgmlDequant : public ::testing::TestWithParam<GgmlCase> {};

TEST_P(GgmlDequant, BitExactWithGgufPy) {
  const GgmlCase c = GetParam();
  const std::string base = std::string(MOE_TEST_DATA_DIR) + "/ggml/" + c.name;
  const std::vector<uint8_t> blocks = read_file(base + ".bin");
  const std::vector<uint8_t> ref_bytes = read_file(base + ".f32");
  const GgmlBlock blk = ggml_block(c.type);
  ASSERT_GT(blk.elems, 0);
  ASSERT_EQ(blocks.size() % static_cast<size_t>(blk.bytes), 0u);
  const int64_t nb = static_cast<int64_t>(blocks.size()) / blk.bytes;
  ASSERT_GE(nb, 2);
  const int64_t n = nb * blk.elems;
  ASSERT_EQ(ref_bytes.size(), static_cast<size_t>(n) * 4);
  std::vector<float> ref(static_cast<size_t>(n));
  std::memcpy(ref.data(), ref_bytes.data(), ref_bytes.size());

  std::vector<float> got(static_cast<size_t>(n), -1.0f);
  ggml_dequantize_row(c.type, blocks.data(), n, got.data());
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto a = std::bit_cast<uint32_t>(got[static_cast<size_t>(i)]);
    const auto b = std::bit_cast<uint32_t>(ref[static_cast<size_t>(i)]);
    // -0 and +0 are the same weight (numpy and ggml may differ in the sign of a zero product).
    if (a != b && !(got[static_cast<size_t>(i)] == 0.0f && ref[static_cast<size_t>(i)] == 0.0f)) {
      if (++mismatches <= 5)
        ADD_FAILURE() << c.name << " weight " << i << " (block " << i / blk.elems << "): got "
                      << got[static_cast<size_t>(i)] << ", gguf-py " << ref[static_cast<size_t>(i)];
    }
  }
  EXPECT_EQ(mismatches, 0) << c.name;

  // Block by block gives the same weights as the whole row (no state carried between blocks).
  std::vector<float> one(static_cast<size_t>(blk.elems));
  for (int64_t b = 0; b < nb; ++b) {
    ggml_dequantize_row(c.type, blocks.data() + b * blk.bytes, blk.elems, one.data());
    EXPECT_EQ(0, std::memcmp(one.data(), got.data() + b * blk.elems, one.size() * 4)) << c.name << " block " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgmlDequant, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<GgmlCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace moe
