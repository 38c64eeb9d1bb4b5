// linear() against the float64 reference: every weight dtype, awkward K and T, biases of each
// dtype, and thread-count / token-count independence of the result.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <tuple>

#include "kernels/cpu/linear.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

const char* name_of(DType t) {
  return t == DType::kF32 ? "F32" : t == DType::kF16 ? "F16" : "BF16";
}

// f32 accumulation (products and sums each round at 2^-24 relative) against f64: the error is
// bounded by a small multiple of eps * sum |terms|; 1e-5 * sum|terms| leaves a wide margin for
// K up to 4099 while still catching any wrong or missing term.
void expect_linear_matches(const std::vector<float>& x, int64_t T, int64_t K, const ref::Weights& w, int64_t N,
                           WeightRef bias) {
  std::vector<float> y(static_cast<size_t>(T * N));
  ref::poison(y);
  cpu::linear(x.data(), T, K, w.ref(), N, bias, y.data());
  std::vector<double> want, mag;
  ref::linear(x.data(), T, K, w.ref(), N, bias, want, mag);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want[i], 1e-5 * mag[i] + 1e-6) << "element " << i;
}

using LinearParam = std::tuple<DType, int64_t, int64_t>;  // weight dtype, K, T
class LinearTest : public ::testing::TestWithParam<LinearParam> {};

TEST_P(LinearTest, MatchesReference) {
  const auto [dtype, K, T] = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(1000 + K * 7 + T));
  for (const int64_t N : {int64_t{1}, int64_t{5}, int64_t{37}}) {
    SCOPED_TRACE("N=" + std::to_string(N));
    const auto x = ref::normal(rng, static_cast<size_t>(T * K));
    const ref::Weights w(ref::normal(rng, static_cast<size_t>(N * K)), dtype);
    expect_linear_matches(x, T, K, w, N, WeightRef{});
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearTest,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                                            ::testing::Values(1, 7, 33, 100, 1000, 4099), ::testing::Values(1, 3, 17)),
                         [](const ::testing::TestParamInfo<LinearParam>& p) {
                           return std::string(name_of(std::get<0>(p.param))) + "_K" +
                                  std::to_string(std::get<1>(p.param)) + "_T" + std::to_string(std::get<2>(p.param));
                         });

TEST(Linear, BiasOfEachDtype) {
  std::mt19937 rng(11);
  const int64_t K = 100, N = 29;
  for (const DType wt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const DType bt : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (const int64_t T : {int64_t{1}, int64_t{3}}) {
        SCOPED_TRACE(std::string("w=") + name_of(wt) + " bias=" + name_of(bt) + " T=" + std::to_string(T));
        const auto x = ref::normal(rng, static_cast<size_t>(T * K));
        const ref::Weights w(ref::normal(rng, static_cast<size_t>(N * K)), wt);
        const ref::Weights b(ref::normal(rng, static_cast<size_t>(N)), bt);
        expect_linear_matches(x, T, K, w, N, b.ref());
      }
    }
  }
}

// Large enough for the parallel path (T * N * K well above the serial threshold).
TEST(Linear, SameResultWithOneAndTwoThreads) {
  std::mt19937 rng(12);
  const int64_t K = 1000, N = 301;
  const int saved = omp_get_max_threads();
  for (const DType wt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const int64_t T : {int64_t{1}, int64_t{3}}) {
      const auto x = ref::normal(rng, static_cast<size_t>(T * K));
      const ref::Weights w(ref::normal(rng, static_cast<size_t>(N * K)), wt);
      const ref::Weights b(ref::normal(rng, static_cast<size_t>(N)), wt);
      std::vector<float> y1(static_cast<size_t>(T * N)), y2(y1.size());
      ref::poison(y1);
      ref::poison(y2);
      omp_set_num_threads(1);
      cpu::linear(x.data(), T, K, w.ref(), N, b.ref(), y1.data());
      omp_set_num_threads(2);
      cpu::linear(x.data(), T, K, w.ref(), N, b.ref(), y2.data());
      EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float))) << name_of(wt) << " T=" << T;
    }
  }
  omp_set_num_threads(saved);
}

// Implementation property worth keeping: decode (T = 1) and prefill (T > 1, converted rows)
// add in the same order, so a token's output does not depend on how many tokens share the call.
TEST(Linear, TokenRowsIndependentOfBatch) {
  std::mt19937 rng(13);
  const int64_t K = 1000, N = 64, T = 5;
  for (const DType wt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const auto x = ref::normal(rng, static_cast<size_t>(T * K));
    const ref::Weights w(ref::normal(rng, static_cast<size_t>(N * K)), wt);
    std::vector<float> batch(static_cast<size_t>(T * N)), single(static_cast<size_t>(N));
    ref::poison(batch);
    cpu::linear(x.data(), T, K, w.ref(), N, WeightRef{}, batch.data());
    for (int64_t t = 0; t < T; ++t) {
      ref::poison(single);
      cpu::linear(x.data() + t * K, 1, K, w.ref(), N, WeightRef{}, single.data());
      EXPECT_EQ(0, std::memcmp(single.data(), batch.data() + t * N, single.size() * sizeof(float)))
          << name_of(wt) << " t=" << t;
    }
  }
}

// F16 weights covering subnormals, zeros of both signs and the largest finite values: the
// kernel's vectorised half conversion must agree with f16_to_f32 on every one.
TEST(Linear, F16SpecialValues) {
  const int64_t K = 70, N = 3;
  std::vector<uint16_t> bits(static_cast<size_t>(N * K));
  const uint16_t specials[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff, 0x0400, 0x7bff, 0xfbff, 0x3c00};
  std::mt19937 rng(14);
  for (size_t i = 0; i < bits.size(); ++i)
    bits[i] = i < std::size(specials) ? specials[i] : static_cast<uint16_t>(rng() % 0x7c00u | (rng() & 0x8000u));
  for (const int64_t T : {int64_t{1}, int64_t{2}}) {  // row-dot path and converted-row path
    std::vector<float> x(static_cast<size_t>(T * K));
    std::vector<float> y(static_cast<size_t>(T * N));
    for (int64_t k = 0; k < K; ++k) {
      // One-hot x picks single weights out: y[t, n] must equal w[n, k] exactly.
      std::fill(x.begin(), x.end(), 0.0f);
      for (int64_t t = 0; t < T; ++t) x[static_cast<size_t>(t * K + k)] = 1.0f;
      ref::poison(y);
      cpu::linear(x.data(), T, K, WeightRef{bits.data(), DType::kF16}, N, WeightRef{}, y.data());
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < N; ++n)
          ASSERT_EQ(y[static_cast<size_t>(t * N + n)], f16_to_f32(bits[static_cast<size_t>(n * K + k)]))
              << "T=" << T << " bits 0x" << std::hex << bits[static_cast<size_t>(n * K + k)];
    }
  }
}

}  // namespace
}  // namespace moe
