// Element-wise kernels against the float64 reference, sizes on both sides of the parallel
// thresholds, and the aliasing the contracts allow.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/cpu/elementwise.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

const int64_t kSizes[] = {1, 7, 100, 4099, 40000};

TEST(Embedding, EachDtype) {
  std::mt19937 rng(61);
  const int64_t vocab = 50;
  for (const DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const int64_t D : {1, 33, 4099}) {
      const ref::Weights table(ref::normal(rng, static_cast<size_t>(vocab * D)), dt);
      const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
      const int64_t T = static_cast<int64_t>(ids.size());
      std::vector<float> out(static_cast<size_t>(T * D));
      ref::poison(out);
      cpu::embedding(ids.data(), T, table.ref(), D, out.data());
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < D; ++i)  // conversion to f32 is exact
          ASSERT_EQ(out[static_cast<size_t>(t * D + i)], table.at(ids[static_cast<size_t>(t)] * D + i))
              << dtype_name(dt) << " t " << t << " i " << i;
    }
  }
}

// f32 exp is within an ulp or two; the divide and multiply round once each: 1e-6 relative.
TEST(SiluMul, MatchesReference) {
  std::mt19937 rng(62);
  for (const int64_t n : kSizes) {
    auto gate = ref::normal(rng, static_cast<size_t>(n));
    for (float& g : gate) g *= 4.0f;
    const auto up = ref::normal(rng, static_cast<size_t>(n));
    std::vector<float> out(static_cast<size_t>(n));
    ref::poison(out);
    cpu::silu_mul(gate.data(), up.data(), n, out.data());
    for (size_t i = 0; i < out.size(); ++i) {
      const double want = ref::silu(gate[i]) * up[i];
      ASSERT_NEAR(out[i], want, 1e-6 * std::fabs(want) + 1e-12) << "n " << n << " i " << i;
    }
  }
}

TEST(SiluMul, OutAliasesGateOrUp) {
  std::mt19937 rng(63);
  for (const int64_t n : {int64_t{100}, int64_t{40000}}) {
    const auto gate = ref::normal(rng, static_cast<size_t>(n));
    const auto up = ref::normal(rng, static_cast<size_t>(n));
    std::vector<float> expected(static_cast<size_t>(n));
    cpu::silu_mul(gate.data(), up.data(), n, expected.data());
    auto g = gate;
    cpu::silu_mul(g.data(), up.data(), n, g.data());
    EXPECT_EQ(g, expected);
    auto u = up;
    cpu::silu_mul(gate.data(), u.data(), n, u.data());
    EXPECT_EQ(u, expected);
  }
}

TEST(SiluMul, ExtremeGates) {
  const std::vector<float> gate = {-1000.0f, -100.0f, 100.0f, 1000.0f};
  const std::vector<float> up(4, 2.0f);
  std::vector<float> out(4);
  ref::poison(out);
  cpu::silu_mul(gate.data(), up.data(), 4, out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 0.0f, 1e-30f);
  EXPECT_EQ(out[2], 200.0f);
  EXPECT_EQ(out[3], 2000.0f);
}

// One multiply and one add in f32 (possibly fused): error <= 2^-23 * (|acc| + |s x|).
TEST(AddScaled, MatchesReference) {
  std::mt19937 rng(64);
  for (const int64_t n : kSizes) {
    auto acc = ref::normal(rng, static_cast<size_t>(n));
    const auto before = acc;
    const auto x = ref::normal(rng, static_cast<size_t>(n));
    const float s = 0.37f;
    cpu::add_scaled(acc.data(), x.data(), s, n);
    for (size_t i = 0; i < acc.size(); ++i) {
      const double term = static_cast<double>(s) * x[i];
      ASSERT_NEAR(acc[i], before[i] + term, 2e-7 * (std::fabs(before[i]) + std::fabs(term))) << i;
    }
  }
}

// A single f32 add is exactly the rounded double sum.
TEST(AddInplace, MatchesReference) {
  std::mt19937 rng(65);
  for (const int64_t n : kSizes) {
    auto a = ref::normal(rng, static_cast<size_t>(n));
    const auto before = a;
    const auto b = ref::normal(rng, static_cast<size_t>(n));
    cpu::add_inplace(a.data(), b.data(), n);
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_EQ(a[i], static_cast<float>(static_cast<double>(before[i]) + b[i])) << i;
  }
}

TEST(Clamp, Exact) {
  std::mt19937 rng(66);
  for (const int64_t n : kSizes) {
    auto x = ref::normal(rng, static_cast<size_t>(n));
    const auto before = x;
    cpu::clamp(x.data(), n, -0.5f, 0.75f);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(x[i], before[i] < -0.5f ? -0.5f : before[i] > 0.75f ? 0.75f : before[i]) << i;
  }
}

TEST(Sigmoid, MatchesReference) {
  std::mt19937 rng(67);
  for (const float x : ref::uniform(rng, 1000, -20.0f, 20.0f)) {
    const double want = ref::sigmoid(x);
    ASSERT_NEAR(cpu::sigmoid(x), want, 1e-6 * want) << x;
  }
  EXPECT_EQ(cpu::sigmoid(-1000.0f), 0.0f);
  EXPECT_EQ(cpu::sigmoid(1000.0f), 1.0f);
  EXPECT_EQ(cpu::sigmoid(0.0f), 0.5f);
}

}  // namespace
}  // namespace moe
