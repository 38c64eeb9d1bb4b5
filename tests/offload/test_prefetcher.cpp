// The prefetcher's bookkeeping on synthetic routing traces: deadline order, merged repeats,
// recall and precision against what the routers chose.
#include <gtest/gtest.h>

#include <random>

#include "runtime/offload/prefetcher.h"

namespace moe {
namespace {

TEST(Prefetcher, IssuesByDeadlineThenScore) {
  Prefetcher p(0, 4, 8);
  p.begin_step();
  p.predict({2, 5}, 0.9);
  p.predict({1, 3}, 0.2);
  p.predict({1, 6}, 0.7);
  p.predict({2, 1}, 0.95);
  std::vector<ExpertKey> order;
  while (auto q = p.peek()) {
    order.push_back(q->key);
    p.pop();
  }
  EXPECT_EQ(order, (std::vector<ExpertKey>{{1, 6}, {1, 3}, {2, 1}, {2, 5}}));
}

TEST(Prefetcher, RepeatsMergeKeepingTheHigherScore) {
  Prefetcher p(0, 4, 8);
  p.begin_step();
  p.predict({2, 5}, 0.3);  // from depth 2
  p.predict({2, 4}, 0.5);
  p.predict({2, 5}, 0.8);  // again from depth 1
  EXPECT_EQ(p.queued(), 2u);
  EXPECT_EQ(p.peek()->key, (ExpertKey{2, 5}));
  EXPECT_DOUBLE_EQ(p.peek()->score, 0.8);
  const std::vector<int32_t> used = {5, 7};
  const PrefetchCounts c = p.observe(2, used);
  EXPECT_EQ(c.predicted, 2u);
  EXPECT_EQ(c.used, 2u);
  EXPECT_EQ(c.predicted_and_used, 1u);
  EXPECT_EQ(p.queued(), 0u) << "observing a layer drops its unissued predictions";
}

TEST(Prefetcher, RecallAndPrecisionOnASyntheticTrace) {
  // 6 layers x 8 experts, top-2; the predictor is right about the first expert of each layer and
  // wrong about the second, so recall = precision = 1/2 exactly.
  Prefetcher p(0, 6, 8);
  std::mt19937 rng(7);
  for (int step = 0; step < 50; ++step) {
    p.begin_step();
    std::vector<std::vector<int32_t>> used(6);
    for (int l = 0; l < 6; ++l) {
      int32_t a = static_cast<int32_t>(rng() % 8), b = static_cast<int32_t>(rng() % 8);
      while (b == a) b = static_cast<int32_t>(rng() % 8);
      used[static_cast<size_t>(l)] = {std::min(a, b), std::max(a, b)};
    }
    for (int l = 0; l < 6; ++l) {
      p.observe(l, used[static_cast<size_t>(l)]);
      if (l + 1 < 6) {  // predictions for the next layer, made after this one
        const std::vector<int32_t>& next = used[static_cast<size_t>(l + 1)];
        int32_t wrong = 0;
        while (wrong == next[0] || wrong == next[1]) ++wrong;
        p.predict({l + 1, next[0]}, 0.6);
        p.predict({l + 1, wrong}, 0.4);
      }
    }
  }
  const PrefetchCounts& t = p.totals();
  EXPECT_EQ(t.used, 50u * 5 * 2) << "layer 0 has no predictions and is not scored";
  EXPECT_EQ(t.predicted, 50u * 5 * 2);
  EXPECT_DOUBLE_EQ(t.recall(), 0.5);
  EXPECT_DOUBLE_EQ(t.precision(), 0.5);
}

TEST(Prefetcher, PerfectAndEmptyPredictions) {
  Prefetcher p(2, 2, 4);  // layers 2 and 3 only
  p.begin_step();
  p.predict({3, 1}, 1);
  p.predict({3, 2}, 1);
  const std::vector<int32_t> used = {1, 2};
  EXPECT_EQ(p.observe(2, used).predicted, 0u);
  const PrefetchCounts c = p.observe(3, used);
  EXPECT_DOUBLE_EQ(c.recall(), 1.0);
  EXPECT_DOUBLE_EQ(c.precision(), 1.0);
  // A new step forgets the old step's predictions.
  p.predict({3, 0}, 1);
  p.begin_step();
  EXPECT_EQ(p.queued(), 0u);
  EXPECT_EQ(p.observe(3, used).predicted, 0u);
  EXPECT_EQ(PrefetchCounts{}.recall(), 0.0);
}

}  // namespace
}  // namespace moe
