// The pure planners of parallel/: pipeline layer ranges (parsed, and balanced against a brute-force
// search over every split) and expert placement (balanced by use, even counts per rank).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include "parallel/expert_placement.h"
#include "parallel/layer_planner.h"
#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

int64_t stage_cost(const LayerParams& p, const LayerRange& r) {
  int64_t c = std::accumulate(p.layers.begin() + r.begin, p.layers.begin() + r.end, int64_t{0});
  if (r.begin == 0) c += p.first_extra;
  if (r.end == static_cast<int64_t>(p.layers.size())) c += p.last_extra;
  return c;
}

int64_t worst(const LayerParams& p, const std::vector<LayerRange>& rs) {
  int64_t w = 0;
  for (const LayerRange& r : rs) w = std::max(w, stage_cost(p, r));
  return w;
}

// The best largest stage over every way to cut n layers into s contiguous non-empty ranges.
int64_t brute_force(const LayerParams& p, int s) {
  const auto n = static_cast<int64_t>(p.layers.size());
  int64_t best = std::numeric_limits<int64_t>::max();
  std::vector<int64_t> cuts(static_cast<size_t>(s - 1));
  std::function<void(int, int64_t)> rec = [&](int k, int64_t from) {
    if (k == s - 1) {
      std::vector<LayerRange> rs;
      int64_t b = 0;
      for (const int64_t c : cuts) {
        rs.push_back({b, c});
        b = c;
      }
      rs.push_back({b, n});
      best = std::min(best, worst(p, rs));
      return;
    }
    for (int64_t c = from; c <= n - (s - 1 - k); ++c) {
      cuts[static_cast<size_t>(k)] = c;
      rec(k + 1, c + 1);
    }
  };
  rec(0, 1);
  return best;
}

TEST(LayerPlanner, BalancedSplitIsOptimalAndContiguous) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 40; ++trial) {
    LayerParams p;
    const int n = 2 + static_cast<int>(rng() % 9);
    for (int i = 0; i < n; ++i) p.layers.push_back(1 + static_cast<int64_t>(rng() % 100));
    p.first_extra = static_cast<int64_t>(rng() % 150);
    p.last_extra = static_cast<int64_t>(rng() % 150);
    for (int s = 1; s <= std::min(n, 4); ++s) {
      const std::vector<LayerRange> rs = balance_layers(p, s);
      ASSERT_EQ(rs.size(), static_cast<size_t>(s));
      int64_t next = 0;
      for (const LayerRange& r : rs) {
        EXPECT_EQ(r.begin, next);
        EXPECT_GT(r.end, r.begin);
        next = r.end;
      }
      EXPECT_EQ(next, n);
      EXPECT_EQ(worst(p, rs), brute_force(p, s)) << "trial " << trial << ", " << s << " stages";
    }
  }
  LayerParams three{{5, 5, 5}, 0, 0};
  EXPECT_THROW(balance_layers(three, 4), Error);
}

TEST(LayerPlanner, ParsesAndRefusesRanges) {
  const std::vector<LayerRange> rs = parse_layer_ranges("0:12,12:32", 32, 2);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].begin, 12);
  EXPECT_EQ(rs[1].end, 32);
  EXPECT_EQ(format_layer_ranges(rs), "0:12,12:32");
  for (const char* bad : {"0:12", "0:12,13:32", "0:12,12:33", "0:0,0:32", "0-12,12:32", "0:12,12:x"})
    EXPECT_THROW(parse_layer_ranges(bad, 32, 2), Error) << bad;
}

TEST(ExpertPlacement, BalancesUseWithEvenCounts) {
  const int64_t layers = 3, experts = 8;
  std::vector<uint64_t> counts(static_cast<size_t>(layers * experts));
  std::mt19937 rng(9);
  for (uint64_t& c : counts) c = rng() % 1000;
  counts[3] = 50000;  // one hot expert
  for (const int ep : {1, 2, 4}) {
    const std::vector<int32_t> owners = balance_experts(counts, layers, experts, ep);
    for (int64_t l = 0; l < layers; ++l)
      for (int r = 0; r < ep; ++r)
        EXPECT_EQ(std::count(owners.begin() + l * experts, owners.begin() + (l + 1) * experts, r), experts / ep);
    // Each layer's busiest rank (what that layer's all-reduce waits for): no worse than round
    // robin over the layers, and within 4/3 of the best balanced split (brute force for ep 2).
    const auto rr = round_robin_experts(layers, experts, ep);
    uint64_t sum_greedy = 0, sum_rr = 0;
    for (int64_t l = 0; l < layers; ++l) {
      std::vector<uint64_t> g(static_cast<size_t>(ep)), r(static_cast<size_t>(ep));
      for (int64_t e = 0; e < experts; ++e) {
        const auto i = static_cast<size_t>(l * experts + e);
        g[static_cast<size_t>(owners[i])] += counts[i];
        r[static_cast<size_t>(rr[i])] += counts[i];
      }
      const uint64_t gmax = *std::max_element(g.begin(), g.end());
      sum_greedy += gmax;
      sum_rr += *std::max_element(r.begin(), r.end());
      if (ep == 2) {
        uint64_t best = std::numeric_limits<uint64_t>::max();
        for (unsigned mask = 0; mask < (1u << experts); ++mask) {
          if (__builtin_popcount(mask) != experts / 2) continue;
          uint64_t a = 0, b = 0;
          for (int64_t e = 0; e < experts; ++e) (mask >> e & 1 ? a : b) += counts[static_cast<size_t>(l * experts + e)];
          best = std::min(best, std::max(a, b));
        }
        EXPECT_LE(3 * gmax, 4 * best) << "layer " << l;
      }
    }
    EXPECT_LE(sum_greedy, sum_rr) << "ep " << ep;
  }
  EXPECT_THROW(balance_experts(counts, layers, experts, 3), Error);
}

}  // namespace
}  // namespace moe::parallel
