// Host-side checks of the CUDA ggml block dequantization (label `kernels`: no GPU needed). The
// per-unit dequantization of kernels/cuda/ggml_dequant.cuh is __host__ __device__: here it runs on
// the host over random blocks (random bytes, finite f16 scales) of every ggml type and must equal
// the CPU reference ggml_dequantize_row bit for bit. The device build of the same code uses
// __fmul_rn / __fadd_rn / __fsub_rn, which round as the host's plain operations do; what the
// kernels add on top (the warp walk, x, the reduction) is checked by tests/gpu/test_ggml_linear.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ggml_reference.h"
#include "kernels/cuda/ggml_dequant.cuh"

namespace moe::cuda {
namespace {

static_assert(static_cast<int>(GgmlType::kQ4_0) == 0 && static_cast<int>(GgmlType::kIQ4_XS) == 10,
              "GgmlType follows QuantType's ggml order (tests/cuda_host/ggml_reference.h)");

constexpr GgmlType kTypes[] = {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,  GgmlType::kQ5_1,
                               GgmlType::kQ8_0, GgmlType::kQ2_K, GgmlType::kQ3_K,  GgmlType::kQ4_K,
                               GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_XS};

// Byte offsets of a block's f16 scale fields (ggml-common.h); -1: none.
void f16_fields(GgmlType t, int out[2]) {
  out[0] = 0;
  out[1] = -1;
  switch (t) {
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
    case GgmlType::kQ8_0:
    case GgmlType::kIQ4_XS: return;
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: out[1] = 2; return;
    case GgmlType::kQ2_K: out[0] = 80, out[1] = 82; return;
    case GgmlType::kQ3_K: out[0] = 108; return;
    case GgmlType::kQ6_K: out[0] = 208; return;
  }
}

// `blocks` random blocks of type t: random bytes, then finite f16 scales in [-2, 2].
std::vector<uint8_t> random_blocks(GgmlType t, int64_t blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  const int bb = ggml_block_bytes(t);
  std::vector<uint8_t> v(static_cast<size_t>(blocks * bb));
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng() & 0xFFu);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  int off[2];
  f16_fields(t, off);
  for (int64_t b = 0; b < blocks; ++b)
    for (int o : off) {
      if (o < 0) continue;
      const __half_raw h = __half(__float2half(u(rng)));
      v[static_cast<size_t>(b * bb + o)] = static_cast<uint8_t>(h.x & 0xFFu);
      v[static_cast<size_t>(b * bb + o + 1)] = static_cast<uint8_t>(h.x >> 8);
    }
  return v;
}

TEST(CudaGgmlDequant, EveryTypeBitExactWithTheCpuReference) {
  for (GgmlType t : kTypes) {
    const int64_t blocks = 37;
    const int64_t n = blocks * ggml_block_elems(t);
    const std::vector<uint8_t> data = random_blocks(t, blocks, 11u + static_cast<uint32_t>(t));
    std::vector<float> ref(static_cast<size_t>(n)), got(static_cast<size_t>(n));
    test::ggml_reference_row(static_cast<int>(t), data.data(), n, ref.data());
    ggml::with_type(t, [&](auto tc) {
      for (int64_t u = 0; u < n / ggml::kUnit; ++u)
        ggml::dequant_row_unit<decltype(tc)::value>(data.data(), u, got.data() + u * ggml::kUnit);
    });
    for (int64_t i = 0; i < n; ++i) {
      uint32_t a, b;
      std::memcpy(&a, &got[static_cast<size_t>(i)], 4);
      std::memcpy(&b, &ref[static_cast<size_t>(i)], 4);
      ASSERT_EQ(a, b) << "ggml type " << static_cast<int>(t) << " weight " << i << ": cuda " << got[i] << ", cpu "
                      << ref[i];
    }
  }
}

// The GEMV's row walk (ggml::row_dot), run lane by lane on the host with the 4-row x of the
// kernel and fewer rows in use, summed over the 32 lanes, against a double dot of the reference
// values: checks the unit indexing and the x offsets of every type.
TEST(CudaGgmlDequant, RowWalkOfEveryTypeMatchesADoubleDot) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  for (GgmlType t : kTypes)
    for (int64_t blocks : {1, 3, 9})
      for (int T : {1, 3, 4}) {
        const int64_t K = blocks * ggml_block_elems(t);
        const std::vector<uint8_t> row = random_blocks(t, blocks, 100u + static_cast<uint32_t>(blocks));
        std::vector<float> ref(static_cast<size_t>(K));
        test::ggml_reference_row(static_cast<int>(t), row.data(), K, ref.data());
        std::vector<float4> xs(static_cast<size_t>(T * K / 4));
        auto* x = reinterpret_cast<float*>(xs.data());
        for (int64_t i = 0; i < T * K; ++i) x[i] = nd(rng);
        gemv_detail::XRows<kGgmlGemvMaxTokens> xr;
        xr.x = x;
        xr.K = K;
        xr.T = T;
        xr.vec = true;
        double got[kGgmlGemvMaxTokens] = {};
        ggml::with_type(t, [&](auto tc) {
          for (int lane = 0; lane < 32; ++lane) {
            float acc[kGgmlGemvMaxTokens] = {};
            ggml::row_dot<decltype(tc)::value, kGgmlGemvMaxTokens>(row.data(), K / ggml::kUnit, xr, lane, acc);
            for (int r = 0; r < kGgmlGemvMaxTokens; ++r) got[r] += acc[r];
          }
        });
        for (int r = 0; r < kGgmlGemvMaxTokens; ++r) {
          double want = 0, mag = 0;
          if (r < T)
            for (int64_t k = 0; k < K; ++k) {
              want += static_cast<double>(ref[static_cast<size_t>(k)]) * x[r * K + k];
              mag += std::fabs(static_cast<double>(ref[static_cast<size_t>(k)]) * x[r * K + k]);
            }
          EXPECT_NEAR(got[r], want, 1e-5 * (mag + 1))
              << "ggml type " << static_cast<int>(t) << " K " << K << " T " << T << " row " << r;
        }
      }
}

}  // namespace
}  // namespace moe::cuda
