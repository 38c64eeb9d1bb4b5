// softmax_topk() against the float64 reference: expert counts, k, both renormalisation modes,
// tie order and the renormalisation divisor.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/cpu/routing.h"
#include "tests/kernels/reference.h"

namespace moe {
namespace {

struct Result {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Result run(const std::vector<float>& logits, int64_t T, int64_t E, int64_t top_k, bool renorm) {
  Result r{std::vector<int32_t>(static_cast<size_t>(T * top_k), -1),
           std::vector<float>(static_cast<size_t>(T * top_k))};
  ref::poison(r.weights);
  cpu::softmax_topk(logits.data(), T, E, top_k, renorm, r.ids.data(), r.weights.data());
  return r;
}

// Probabilities come from f32 exp (within an ulp or two) divided by an f32 sum of E terms,
// and possibly by an f32 sum of top_k of them: relative error a few * E * 2^-24 at worst;
// 1e-5 relative covers E = 128.
TEST(SoftmaxTopk, MatchesReference) {
  std::mt19937 rng(51);
  for (const int64_t E : {8, 60, 64, 128}) {
    for (const int64_t top_k : {1, 2, 4, 8}) {
      for (const int64_t T : {1, 3, 17}) {
        for (const bool renorm : {false, true}) {
          SCOPED_TRACE("E=" + std::to_string(E) + " k=" + std::to_string(top_k) + " T=" + std::to_string(T) +
                       " renorm=" + std::to_string(renorm));
          const auto logits = ref::normal(rng, static_cast<size_t>(T * E));
          const Result got = run(logits, T, E, top_k, renorm);
          std::vector<int32_t> ids;
          std::vector<double> w;
          ref::softmax_topk(logits.data(), T, E, top_k, renorm, ids, w);
          EXPECT_EQ(got.ids, ids);
          for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(got.weights[i], w[i], 1e-5 * w[i] + 1e-7) << i;
        }
      }
    }
  }
}

TEST(SoftmaxTopk, EqualLogitsLowerIndexFirst) {
  const int64_t E = 8;
  const std::vector<float> all_equal(E, 0.5f);
  const Result r = run(all_equal, 1, E, 3, false);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1, 2}));
  for (const float w : r.weights) EXPECT_FLOAT_EQ(w, 1.0f / 8.0f);

  // Ties below a unique maximum: 3 wins, then the tied 1, 4, 6 in index order.
  const std::vector<float> logits = {0.0f, 2.0f, -1.0f, 3.0f, 2.0f, 1.0f, 2.0f, 0.5f};
  const Result s = run(logits, 1, E, 4, true);
  EXPECT_EQ(s.ids, (std::vector<int32_t>{3, 1, 4, 6}));
  EXPECT_EQ(s.weights[1], s.weights[2]);
  EXPECT_EQ(s.weights[2], s.weights[3]);
}

// Renormalised weights are p_i / sum(chosen p): sum to 1 with ratios kept. Without
// renormalisation they are the plain softmax probabilities over all E experts.
TEST(SoftmaxTopk, Renormalisation) {
  std::mt19937 rng(52);
  const int64_t E = 16, k = 4;
  const auto logits = ref::normal(rng, E);
  const Result plain = run(logits, 1, E, k, false);
  const Result renorm = run(logits, 1, E, k, true);
  EXPECT_EQ(plain.ids, renorm.ids);

  double total = 0.0;
  for (const float l : logits) total += std::exp(static_cast<double>(l));
  double chosen = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    const double p =
        std::exp(static_cast<double>(logits[static_cast<size_t>(plain.ids[static_cast<size_t>(i)])])) / total;
    EXPECT_NEAR(plain.weights[static_cast<size_t>(i)], p, 1e-6 * p);
    chosen += p;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    const double p = plain.weights[static_cast<size_t>(i)];
    EXPECT_NEAR(renorm.weights[static_cast<size_t>(i)], p / chosen, 1e-6);
    sum += renorm.weights[static_cast<size_t>(i)];
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_LT(chosen, 0.999);  // renormalisation actually changed something

  // top_k == E with renormalisation: the weights are the full softmax.
  const Result full = run(logits, 1, E, E, true);
  for (int64_t i = 0; i < E; ++i) {
    const size_t id = static_cast<size_t>(full.ids[static_cast<size_t>(i)]);
    EXPECT_NEAR(full.weights[static_cast<size_t>(i)], std::exp(static_cast<double>(logits[id])) / total, 1e-6);
  }
}

// Large logits must not overflow: the maximum is subtracted before exp.
TEST(SoftmaxTopk, LargeLogits) {
  const std::vector<float> logits = {1000.0f, 999.0f, -1000.0f, 998.0f};
  const Result r = run(logits, 1, 4, 2, false);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1}));
  const double z = 1.0 + std::exp(-1.0) + std::exp(-2.0);
  EXPECT_NEAR(r.weights[0], 1.0 / z, 1e-6);
  EXPECT_NEAR(r.weights[1], std::exp(-1.0) / z, 1e-6);
}

}  // namespace
}  // namespace moe
