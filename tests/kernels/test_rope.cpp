// rope() against the reference: head sizes, token counts, random and very large positions.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/cpu/rope.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

// Both sides use the same f32 angle (the contract), so the remaining differences are cosf/sinf
// (within an ulp or two of the double values) and the f32 products and sum: error below
// ~4 * 2^-24 * (|x_i| + |x_{i+d/2}|). 1e-6 of that magnitude is a safe bound.
void check(std::mt19937& rng, int64_t T, int64_t n_heads, int64_t head_dim, const std::vector<int64_t>& positions,
           float theta) {
  auto x = ref::normal(rng, static_cast<size_t>(T * n_heads * head_dim));
  const auto want = ref::rope(x.data(), T, n_heads, head_dim, positions.data(), theta);
  const auto before = x;
  cpu::rope(x.data(), T, n_heads, head_dim, positions.data(), theta);
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < T * n_heads; ++r) {
    for (int64_t i = 0; i < head_dim; ++i) {
      const size_t at = static_cast<size_t>(r * head_dim + i);
      const size_t pair = static_cast<size_t>(r * head_dim + (i < half ? i + half : i - half));
      const double mag = std::fabs(before[at]) + std::fabs(before[pair]);
      ASSERT_NEAR(x[at], want[at], 1e-6 * mag + 1e-7) << "row " << r << " i " << i;
    }
  }
}

TEST(Rope, MatchesReference) {
  std::mt19937 rng(31);
  for (const float theta : {10000.0f, 1e6f}) {
    for (const int64_t head_dim : {8, 64, 128}) {
      for (const int64_t T : {1, 3, 17}) {
        for (const int64_t heads : {1, 4}) {
          SCOPED_TRACE("theta=" + std::to_string(theta) + " d=" + std::to_string(head_dim) + " T=" + std::to_string(T) +
                       " heads=" + std::to_string(heads));
          std::vector<int64_t> pos(static_cast<size_t>(T));
          for (auto& p : pos) p = static_cast<int64_t>(rng() % 5000);
          check(rng, T, heads, head_dim, pos, theta);
        }
      }
    }
  }
}

// A prefill large enough for the parallel path, consecutive positions.
TEST(Rope, LongPrefill) {
  std::mt19937 rng(32);
  const int64_t T = 300;
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = 7 + t;
  check(rng, T, 8, 64, pos, 1e6f);
}

TEST(Rope, LargePosition) {
  std::mt19937 rng(33);
  check(rng, 3, 4, 128, {100000, 100001, 131071}, 1e6f);
  check(rng, 1, 2, 64, {100000}, 10000.0f);
}

TEST(Rope, PositionZeroIsIdentity) {
  std::mt19937 rng(34);
  auto x = ref::normal(rng, 2 * 64);
  const auto before = x;
  const int64_t pos = 0;
  cpu::rope(x.data(), 1, 2, 64, &pos, 10000.0f);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], before[i]);
}

}  // namespace
}  // namespace moe
