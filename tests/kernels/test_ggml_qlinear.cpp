// ggml_qlinear (kernels/cpu/ggml_qlinear.h) against the scalar reference: every weight row
// dequantized by ggml_dequantize_row (bit-exact with gguf-py: test_ggml_quants.cpp) and multiplied
// in float64. Every ggml type, T in {1, 3, 4, 5, 8, 17, 33} (the integer path's tiles of 4 token
// rows and their remainders), N not a multiple of any SIMD width, K several blocks (for the
// 32-weight types two groups of 256 and a short one), every ISA this machine has, bias on and off.
// The f32 path must meet qref::tolerance; the integer path (ggml_qlinear_int_path: every ggml type
// on AVX2 and AVX-512 in GCC x86 builds) may differ by the rounding of x to int8 per 32 as well,
// bounded like our q8/q4 integer paths (qref::int_bound with group 32). Every token row must give
// the same bits alone as inside a batch, whatever the thread count, and the AVX2 and AVX-512 VNNI
// integer kernels the same bits as each other (both exact in integers, same float operations).
// Then the dispatch of qlinear and qswiglu on ggml-typed weights.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/ggml_qlinear.h"
#include "kernels/cpu/qlinear.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/quant/ggml_quants.h"
#include "tests/kernels/qlinear_reference.h"

namespace moe {
namespace {

struct TypeInfo {
  QuantType type;
  const char* name;
  int f16_offsets[2];  // byte offsets of the f16 scale fields in a block (-1: none)
};
constexpr TypeInfo kTypes[] = {
    {QuantType::kGgmlQ4_0, "Q4_0", {0, -1}},     {QuantType::kGgmlQ4_1, "Q4_1", {0, 2}},
    {QuantType::kGgmlQ5_0, "Q5_0", {0, -1}},     {QuantType::kGgmlQ5_1, "Q5_1", {0, 2}},
    {QuantType::kGgmlQ8_0, "Q8_0", {0, -1}},     {QuantType::kGgmlQ2_K, "Q2_K", {80, 82}},
    {QuantType::kGgmlQ3_K, "Q3_K", {108, -1}},   {QuantType::kGgmlQ4_K, "Q4_K", {0, 2}},
    {QuantType::kGgmlQ5_K, "Q5_K", {0, 2}},      {QuantType::kGgmlQ6_K, "Q6_K", {208, -1}},
    {QuantType::kGgmlIQ4_XS, "IQ4_XS", {0, -1}},
};

// N rows of K weights: random bytes, the f16 scale fields replaced by finite 2^-10 .. 2^-4.
std::vector<uint8_t> random_ggml(std::mt19937& rng, const TypeInfo& ti, int64_t N, int64_t K) {
  const GgmlBlock blk = ggml_block(ti.type);
  std::vector<uint8_t> w(static_cast<size_t>(N * (K / blk.elems) * blk.bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> log_scale(-10.0f, -4.0f);
  for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
  for (size_t b = 0; b < w.size() / static_cast<size_t>(blk.bytes); ++b)
    for (int off : ti.f16_offsets)
      if (off >= 0)
        qref::put_u16(w.data() + b * static_cast<size_t>(blk.bytes) + off, f32_to_f16(std::exp2(log_scale(rng))));
  return w;
}

std::vector<double> deq_row(QuantType t, const uint8_t* w, int64_t K, int64_t n) {
  const size_t rb = quant_row_bytes(QuantFormat{t, ggml_block(t).elems}, K);
  std::vector<float> f(static_cast<size_t>(K));
  ggml_dequantize_row(t, w + static_cast<size_t>(n) * rb, K, f.data());
  return {f.begin(), f.end()};
}

std::vector<float> random_x(std::mt19937& rng, int64_t n) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = d(rng);
  return x;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
constexpr bool kIntPathBuilt = true;
#else
constexpr bool kIntPathBuilt = false;
#endif

class GgmlQlinear : public ::testing::TestWithParam<TypeInfo> {};

TEST_P(GgmlQlinear, MatchesReferenceOnEveryIsa) {
  const TypeInfo ti = GetParam();
  const int64_t blk = ggml_block(ti.type).elems;
  const int64_t K = blk == 32 ? 19 * 32 : 3 * 256, N = 37;
  std::mt19937 rng(1234 + static_cast<unsigned>(ti.type));
  const std::vector<uint8_t> w = random_ggml(rng, ti, N, K);
  std::vector<float> bias(static_cast<size_t>(N));
  for (float& b : bias) b = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  std::vector<std::vector<double>> rows;
  for (int64_t n = 0; n < N; ++n) rows.push_back(deq_row(ti.type, w.data(), K, n));
  qref::IsaList isas;
  for (const int64_t T : {1, 3, 4, 5, 8, 17, 33}) {
    const std::vector<float> x = random_x(rng, T * K);
    // |x - sx xq| <= sx / 2 per element, sx = amax of its block of 32 / 127 (qref::int_bound).
    std::vector<double> half_sx(static_cast<size_t>(T * K));
    for (int64_t i = 0; i < T * K / 32; ++i) {
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[static_cast<size_t>(32 * i + j)]));
      for (int j = 0; j < 32; ++j) half_sx[static_cast<size_t>(32 * i + j)] = 0.5 * (amax / 127.0f) * (1.0 + 1e-5);
    }
    for (const bool with_bias : {false, true}) {
      const WeightRef b = with_bias ? WeightRef{bias.data(), DType::kF32} : WeightRef{};
      for (const cpu::QIsa isa : isas.isas) {
        cpu::qisa_set(isa);
        const bool int_path = cpu::ggml_qlinear_int_path(ti.type);
        EXPECT_EQ(int_path, kIntPathBuilt && isa != cpu::QIsa::kPortable && !cpu::qlinear_float_forced())
            << ti.name << " isa " << cpu::qisa_name(isa);
        std::vector<float> y(static_cast<size_t>(T * N), NAN);
        cpu::ggml_qlinear(x.data(), T, K, w.data(), ti.type, N, b, y.data());
        for (int64_t t = 0; t < T; ++t)
          for (int64_t n = 0; n < N; ++n) {
            const std::vector<double>& row = rows[static_cast<size_t>(n)];
            double want = with_bias ? bias[static_cast<size_t>(n)] : 0.0, mag = 0.0, err = 0.0;
            for (int64_t k = 0; k < K; ++k) {
              const double p = x[static_cast<size_t>(t * K + k)] * row[static_cast<size_t>(k)];
              want += p;
              mag += std::fabs(p);
              err += std::fabs(row[static_cast<size_t>(k)]) * half_sx[static_cast<size_t>(t * K + k)];
            }
            // Types with a min (Q4_K) sum d*sc*q*x and dmin*m*x separately: terms up to a few
            // times |w x| (4x margin on the f32 rounding).
            const double tol = 4.0 * qref::tolerance(mag) + (int_path ? err : 0.0);
            ASSERT_NEAR(y[static_cast<size_t>(t * N + n)], want, tol)
                << ti.name << " isa " << cpu::qisa_name(isa) << " T " << T << " t " << t << " n " << n
                << (int_path ? " (int)" : " (f32)");
          }
        // Every token row gives the same bits alone as inside a batch of T.
        std::vector<float> y1(static_cast<size_t>(N));
        for (int64_t t = 0; t < T; ++t) {
          cpu::ggml_qlinear(x.data() + t * K, 1, K, w.data(), ti.type, N, b, y1.data());
          EXPECT_EQ(0, std::memcmp(y1.data(), y.data() + t * N, y1.size() * 4))
              << ti.name << " isa " << cpu::qisa_name(isa) << " T " << T << " t " << t;
        }
      }
    }
  }
}

// The integer kernels' int16 sums at their bounds: every code byte the same (0x00, 0x80, 0xff,
// 0x77: the largest codes, scales and offsets of each type), x all +1 or all -1 (every xq = +-127),
// so any int16 overflow (more maddubs pairs summed than the codes allow) shows.
TEST_P(GgmlQlinear, ExtremeCodesAndX) {
  const TypeInfo ti = GetParam();
  const GgmlBlock blk = ggml_block(ti.type);
  const int64_t K = blk.elems == 32 ? 9 * 32 : 2 * 256, N = 3, T = 5;
  qref::IsaList isas;
  for (const int byte : {0x00, 0x80, 0xff, 0x77}) {
    std::vector<uint8_t> w(static_cast<size_t>(N * (K / blk.elems) * blk.bytes), static_cast<uint8_t>(byte));
    for (size_t b = 0; b < w.size() / static_cast<size_t>(blk.bytes); ++b)
      for (int off : ti.f16_offsets)
        if (off >= 0) qref::put_u16(w.data() + b * static_cast<size_t>(blk.bytes) + off, f32_to_f16(1.0f / 64));
    for (const float sx : {1.0f, -1.0f}) {
      const std::vector<float> x(static_cast<size_t>(T * K), sx);
      for (const cpu::QIsa isa : isas.isas) {
        cpu::qisa_set(isa);
        std::vector<float> y(static_cast<size_t>(T * N));
        cpu::ggml_qlinear(x.data(), T, K, w.data(), ti.type, N, WeightRef{}, y.data());
        for (int64_t n = 0; n < N; ++n) {
          const std::vector<double> row = deq_row(ti.type, w.data(), K, n);
          double want = 0.0, mag = 0.0;
          for (int64_t k = 0; k < K; ++k) {
            want += sx * row[static_cast<size_t>(k)];
            mag += std::fabs(row[static_cast<size_t>(k)]);
          }
          for (int64_t t = 0; t < T; ++t)
            ASSERT_NEAR(y[static_cast<size_t>(t * N + n)], want, 4.0 * qref::tolerance(mag) + 1e-6 * mag)
                << ti.name << " isa " << cpu::qisa_name(isa) << " byte " << byte << " x " << sx << " n " << n;
        }
      }
    }
  }
}

// A projection large enough to run on several threads: each token row gives the same bits with 1
// and 2 threads, in a batch of T and alone; the integer path gives the same bits on AVX2 and on
// AVX-512 (VNNI where the CPU has it).
TEST_P(GgmlQlinear, SameBitsWhateverThreadsTAndIntIsa) {
  const TypeInfo ti = GetParam();
  const int64_t blk = ggml_block(ti.type).elems;
  const int64_t K = blk == 32 ? 45 * 32 : 5 * 256, N = 301, T = 11;
  std::mt19937 rng(99 + static_cast<unsigned>(ti.type));
  const std::vector<uint8_t> w = random_ggml(rng, ti, N, K);
  const std::vector<float> x = random_x(rng, T * K);
  qref::IsaList isas;
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> int_results;
  for (const cpu::QIsa isa : isas.isas) {
    cpu::qisa_set(isa);
    std::vector<float> y2(static_cast<size_t>(T * N)), y1(static_cast<size_t>(T * N)), yt(static_cast<size_t>(N));
    omp_set_num_threads(2);
    cpu::ggml_qlinear(x.data(), T, K, w.data(), ti.type, N, WeightRef{}, y2.data());
    omp_set_num_threads(1);
    cpu::ggml_qlinear(x.data(), T, K, w.data(), ti.type, N, WeightRef{}, y1.data());
    omp_set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << ti.name << " isa " << cpu::qisa_name(isa);
    for (int64_t t = 0; t < T; ++t) {
      cpu::ggml_qlinear(x.data() + t * K, 1, K, w.data(), ti.type, N, WeightRef{}, yt.data());
      EXPECT_EQ(0, std::memcmp(yt.data(), y2.data() + t * N, yt.size() * 4))
          << ti.name << " isa " << cpu::qisa_name(isa) << " t " << t;
    }
    if (cpu::ggml_qlinear_int_path(ti.type)) int_results.push_back(y2);
  }
  for (size_t i = 1; i < int_results.size(); ++i)
    EXPECT_EQ(0, std::memcmp(int_results[0].data(), int_results[i].data(), int_results[0].size() * 4))
        << ti.name << ": AVX2 and AVX-512 integer kernels differ";
}

// qlinear and qswiglu on ggml-typed QWeights are ggml_qlinear (bit for bit), with gate, up and
// down of different ggml types.
TEST(GgmlQlinearDispatch, QlinearAndQswiglu) {
  std::mt19937 rng(77);
  const int64_t H = 512, I = 96, T = 3;
  const TypeInfo& gt = kTypes[7];  // Q4_K
  const TypeInfo& ut = kTypes[9];  // Q6_K
  const TypeInfo& dt = kTypes[4];  // Q8_0
  const std::vector<uint8_t> gw = random_ggml(rng, gt, I, H), uw = random_ggml(rng, ut, I, H),
                             dw = random_ggml(rng, dt, H, I);
  const std::vector<float> x = random_x(rng, T * H);
  qref::IsaList isas;
  for (const cpu::QIsa isa : isas.isas) {
    cpu::qisa_set(isa);
    const cpu::QWeight g{gw.data(), QuantFormat{gt.type, 256}, QuantLayout::kRows};
    const cpu::QWeight u{uw.data(), QuantFormat{ut.type, 256}, QuantLayout::kRows};
    const cpu::QWeight d{dw.data(), QuantFormat{dt.type, 32}, QuantLayout::kRows};
    std::vector<float> a(static_cast<size_t>(T * I)), bb(static_cast<size_t>(T * I)), want(static_cast<size_t>(T * H));
    cpu::ggml_qlinear(x.data(), T, H, gw.data(), gt.type, I, WeightRef{}, a.data());
    std::vector<float> via(static_cast<size_t>(T * I));
    cpu::qlinear(x.data(), T, H, g, I, WeightRef{}, via.data());
    EXPECT_EQ(0, std::memcmp(a.data(), via.data(), a.size() * 4)) << cpu::qisa_name(isa);
    cpu::ggml_qlinear(x.data(), T, H, uw.data(), ut.type, I, WeightRef{}, bb.data());
    cpu::silu_mul(a.data(), bb.data(), T * I, a.data());
    cpu::ggml_qlinear(a.data(), T, I, dw.data(), dt.type, H, WeightRef{}, want.data());
    std::vector<float> scratch(static_cast<size_t>(2 * T * I)), y(static_cast<size_t>(T * H));
    cpu::qswiglu(x.data(), T, H, g, u, d, I, scratch.data(), y.data());
    EXPECT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * 4)) << cpu::qisa_name(isa);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgmlQlinear, ::testing::ValuesIn(kTypes),
                         [](const ::testing::TestParamInfo<TypeInfo>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace moe
