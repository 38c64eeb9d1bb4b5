// Scalar dtype conversions (kernels/common/dtype.h) and the dtype name/size table.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>

#include "kernels/common/dtype.h"

namespace moe {
namespace {

struct Case {
  uint32_t f32_bits;
  uint16_t bf16_bits;
  uint16_t f16_bits;
};

// Expected bits computed with torch 2.15 on this machine (not in CI):
//   t = torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)
//   t.to(torch.bfloat16).view(torch.int16), t.to(torch.float16).view(torch.int16)
// Covers: signed zeros, ties to even (both directions) in the normal and subnormal ranges,
// overflow to infinity, the largest half (65504) and its rounding boundary 65520, half
// subnormals down to 2^-24 and the 2^-25 tie, float32 subnormals, and infinities.
constexpr Case kTorchCases[] = {
    {0x00000000u, 0x0000, 0x0000},  // 0.0
    {0x80000000u, 0x8000, 0x8000},  // -0.0
    {0x3f800000u, 0x3f80, 0x3c00},  // 1.0
    {0xbf800000u, 0xbf80, 0xbc00},  // -1.0
    {0x3f808000u, 0x3f80, 0x3c04},  // 1.00390625
    {0x3f818000u, 0x3f82, 0x3c0c},  // 1.01171875
    {0x3f808001u, 0x3f81, 0x3c04},  // 1.0039063692092896
    {0x3f80ffffu, 0x3f81, 0x3c08},  // 1.0078123807907104
    {0x7f7fffffu, 0x7f80, 0x7c00},  // 3.4028234663852886e+38
    {0xff7fffffu, 0xff80, 0xfc00},  // -3.4028234663852886e+38
    {0x7f800000u, 0x7f80, 0x7c00},  // inf
    {0xff800000u, 0xff80, 0xfc00},  // -inf
    {0x00000001u, 0x0000, 0x0000},  // 1.401298464324817e-45
    {0x00400000u, 0x0040, 0x0000},  // 5.877471754111438e-39
    {0x807fffffu, 0x8080, 0x8000},  // -1.1754942106924411e-38
    {0x00800000u, 0x0080, 0x0000},  // 1.1754943508222875e-38
    {0x3eaaaaabu, 0x3eab, 0x3555},  // 0.3333333432674408
    {0x40490fdbu, 0x4049, 0x4248},  // 3.1415927410125732
    {0xb627c5acu, 0xb628, 0x802a},  // -2.499999936844688e-06
    {0x477fe000u, 0x4780, 0x7bff},  // 65504.0
    {0x477fefffu, 0x4780, 0x7bff},  // 65519.99609375
    {0x477ff000u, 0x4780, 0x7c00},  // 65520.0
    {0x33800000u, 0x3380, 0x0001},  // 5.960464477539063e-08
    {0x33000000u, 0x3300, 0x0000},  // 2.9802322387695312e-08
    {0x33400000u, 0x3340, 0x0001},  // 4.470348358154297e-08
    {0x33000001u, 0x3300, 0x0001},  // 2.980232594040899e-08
    {0x38800000u, 0x3880, 0x0400},  // 6.103515625e-05
    {0x387fc000u, 0x3880, 0x03ff},  // 6.097555160522461e-05
    {0x387fe000u, 0x3880, 0x0400},  // 6.1005353927612305e-05
    {0x32000000u, 0x3200, 0x0000},  // 7.450580596923828e-09
    {0xc7800000u, 0xc780, 0xfc00},  // -65536.0
    {0x3f802000u, 0x3f80, 0x3c01},  // 1.0009765625
    {0x3f803000u, 0x3f80, 0x3c02},  // 1.00146484375
    {0x3f801000u, 0x3f80, 0x3c00},  // 1.00048828125
    {0x3f801001u, 0x3f80, 0x3c01},  // 1.0004884004592896
    {0x33c00000u, 0x33c0, 0x0002},  // 8.940696716308594e-08
    {0x34200000u, 0x3420, 0x0002},  // 1.4901161193847656e-07
    {0x00018000u, 0x0002, 0x0000},  // 1.3775324423698682e-40
    {0x00008000u, 0x0000, 0x0000},  // 4.591774807899561e-41
    {0x7f7f8000u, 0x7f80, 0x7c00},  // 3.39617752923046e+38
    {0x7f7f7fffu, 0x7f7f, 0x7c00},  // 3.396177326406364e+38
    {0x477ff001u, 0x4780, 0x7c00},  // 65520.00390625
    {0x38000000u, 0x3800, 0x0200},  // 3.0517578125e-05
};

TEST(Dtype, F32ToBf16MatchesTorch) {
  for (const Case& c : kTorchCases) {
    EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(c.f32_bits)), c.bf16_bits) << std::hex << "f32 bits 0x" << c.f32_bits;
  }
}

TEST(Dtype, F32ToF16MatchesTorch) {
  for (const Case& c : kTorchCases) {
    EXPECT_EQ(f32_to_f16(std::bit_cast<float>(c.f32_bits)), c.f16_bits) << std::hex << "f32 bits 0x" << c.f32_bits;
  }
}

// NaN stays NaN. The payload and sign are not compared: torch 2.15 gives bf16 0xffff for every
// NaN tested and keeps the f16 payload of 0x7fffffff (0x7fff); we return a canonical quiet NaN.
TEST(Dtype, NaNStaysNaN) {
  for (const uint32_t bits : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu, 0xff800001u}) {
    const float nan = std::bit_cast<float>(bits);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(nan)))) << std::hex << bits;
    EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(nan)))) << std::hex << bits;
  }
}

// An independent decoding of IEEE half: (-1)^s * 2^(e-15) * (1 + m/1024) for normals,
// (-1)^s * 2^-14 * (m/1024) for subnormals, inf/NaN for e == 31.
float f16_reference(uint16_t h) {
  const int s = h >> 15;
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  double v = 0;
  if (e == 0) {
    v = std::ldexp(m / 1024.0, -14);
  } else if (e == 31) {
    v = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(1.0 + m / 1024.0, e - 15);
  }
  return static_cast<float>(s ? -v : v);
}

TEST(Dtype, F16ToF32ExhaustiveAgainstLdexp) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float got = f16_to_f32(h);
    const float want = f16_reference(h);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << i;
      continue;
    }
    ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << std::hex << i;
  }
}

// Every finite, non-NaN half survives half -> float -> half exactly.
TEST(Dtype, F16RoundTripsThroughF32) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    if (std::isnan(f16_to_f32(h))) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(h)), h) << std::hex << i;
  }
}

TEST(Dtype, Bf16RoundTripsThroughF32) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    if (std::isnan(bf16_to_f32(h))) continue;
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(h)), h) << std::hex << i;
  }
}

TEST(Dtype, NamesAndSizesMatchSafetensors) {
  struct Row {
    DType t;
    const char* name;
    int bits;
  };
  constexpr Row kRows[] = {
      {DType::kF32, "F32", 32},       {DType::kF16, "F16", 16},       {DType::kBF16, "BF16", 16},
      {DType::kF64, "F64", 64},       {DType::kBool, "BOOL", 8},      {DType::kU8, "U8", 8},
      {DType::kI8, "I8", 8},          {DType::kI16, "I16", 16},       {DType::kU16, "U16", 16},
      {DType::kI32, "I32", 32},       {DType::kU32, "U32", 32},       {DType::kI64, "I64", 64},
      {DType::kU64, "U64", 64},       {DType::kF8E4M3, "F8_E4M3", 8}, {DType::kF8E5M2, "F8_E5M2", 8},
      {DType::kF8E8M0, "F8_E8M0", 8}, {DType::kF4, "F4", 4},
  };
  for (const Row& r : kRows) {
    EXPECT_EQ(dtype_name(r.t), r.name);
    EXPECT_EQ(dtype_bits(r.t), r.bits) << r.name;
    EXPECT_EQ(dtype_from_name(r.name), r.t) << r.name;
    EXPECT_EQ(dtype_is_compute(r.t), r.t == DType::kF32 || r.t == DType::kF16 || r.t == DType::kBF16);
  }
  EXPECT_FALSE(dtype_from_name("Q4").has_value());
  EXPECT_FALSE(dtype_from_name("f32").has_value());
  EXPECT_FALSE(dtype_from_name("").has_value());
}

}  // namespace
}  // namespace moe
