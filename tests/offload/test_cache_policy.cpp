// The expert cache and its replacement policies on synthetic access sequences: which expert is
// evicted, and that pinned (in-flight, in-use, prefetch-held) and static experts never are.
#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "runtime/offload/cache_policy.h"
#include "runtime/offload/expert_cache.h"

namespace moe {
namespace {

ExpertKey K(int l, int e) {
  return {l, e};
}

// Loads k into the cache the way the offloader does: reserve, read (instant here), unpin.
int64_t load(ExpertCache& c, ExpertKey k, std::optional<ExpertKey>* evicted = nullptr) {
  const int64_t s = c.reserve(k, evicted);
  if (s >= 0) {
    c.mark_ready(s);
    c.unpin(s);
  }
  return s;
}

// A use: hit -> touch, miss -> load. Returns true on a hit.
bool use(ExpertCache& c, ExpertKey k) {
  const int64_t s = c.find(k);
  if (s >= 0) {
    c.touch(s);
    return true;
  }
  load(c, k);
  return false;
}

TEST(ExpertCache, LruEvictsTheLeastRecentlyUsed) {
  ExpertCache c(3, make_cache_policy("lru"));
  for (int e : {0, 1, 2}) EXPECT_GE(load(c, K(0, e)), 0);
  EXPECT_TRUE(use(c, K(0, 0)));  // 1 is now the least recent
  std::optional<ExpertKey> evicted;
  load(c, K(0, 3), &evicted);
  ASSERT_TRUE(evicted.has_value());
  EXPECT_EQ(*evicted, K(0, 1));
  EXPECT_LT(c.find(K(0, 1)), 0);
  EXPECT_GE(c.find(K(0, 0)), 0);
  EXPECT_EQ(c.evictions(), 1u);
}

TEST(ExpertCache, LfuKeepsTheFrequentAndForgetsWithDecay) {
  ExpertCache c(2, std::make_unique<LfuDecayPolicy>(4.0));
  load(c, K(0, 0));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(use(c, K(0, 0)));
  load(c, K(0, 1));
  std::optional<ExpertKey> evicted;
  load(c, K(0, 2), &evicted);  // 1 was used once, 0 six times
  ASSERT_TRUE(evicted.has_value());
  EXPECT_EQ(*evicted, K(0, 1));
  // Many accesses later 0's count has decayed below a newcomer that is used repeatedly.
  for (int i = 0; i < 40; ++i) use(c, K(0, 2));
  load(c, K(0, 3), &evicted);
  ASSERT_TRUE(evicted.has_value());
  EXPECT_EQ(*evicted, K(0, 0));
}

TEST(ExpertCache, LfuRemembersCountsOfEvictedExperts) {
  LfuDecayPolicy p(1000);
  for (int i = 0; i < 3; ++i) p.on_access(K(1, 1), static_cast<uint64_t>(i + 1));
  p.on_erase(K(1, 1));
  EXPECT_NEAR(p.keep_score(K(1, 1), 3), 3.0, 0.01);
  EXPECT_GT(p.candidate_score(K(1, 1), 4), p.candidate_score(K(1, 2), 4));
}

TEST(ExpertCache, PinnedAndStaticSlotsAreNeverEvicted) {
  ExpertCache c(3, make_cache_policy("lru"));
  const int64_t a = c.reserve(K(0, 0));  // loading and pinned: in flight
  const int64_t b = load(c, K(0, 1));
  const int64_t s = load(c, K(0, 2));
  c.set_static(s);
  c.pin(b);  // in use
  EXPECT_FALSE(c.victim().has_value());
  EXPECT_EQ(c.reserve(K(0, 3)), -1) << "every slot is in flight, in use or static: nothing may be evicted";
  c.unpin(b);
  ASSERT_TRUE(c.victim().has_value());
  EXPECT_EQ(*c.victim(), b);
  // A slot whose read is in flight is not evictable even when unpinned: eviction never waits.
  c.unpin(a);
  std::optional<ExpertKey> evicted;
  EXPECT_EQ(c.reserve(K(0, 3), &evicted), b);
  EXPECT_EQ(*evicted, K(0, 1));
  EXPECT_EQ(c.state(a), SlotState::kLoading);
  EXPECT_GE(c.find(K(0, 2)), 0);
}

TEST(ExpertCache, EraseFreesTheSlotAndMisuseIsAnError) {
  ExpertCache c(1, make_cache_policy("lru"));
  const int64_t s = c.reserve(K(2, 5));
  EXPECT_THROW(c.reserve(K(2, 5)), Error);
  c.erase(s);
  EXPECT_LT(c.find(K(2, 5)), 0);
  EXPECT_TRUE(c.has_free_slot());
  EXPECT_THROW(c.unpin(s), Error);
  EXPECT_THROW(make_cache_policy("fifo"), Error);
}

TEST(ExpertCache, HitRatesOnASkewedTraceFavourLfu) {
  // 4 slots, 8 experts: experts 0..2 are hot (every other access), 3..7 cycle through cold.
  auto run = [](const char* policy) {
    ExpertCache c(4, make_cache_policy(policy));
    int hits = 0, total = 0;
    int cold = 3;
    for (int i = 0; i < 600; ++i) {
      ExpertKey k = (i % 2 == 0) ? K(0, (i / 2) % 3) : K(0, cold);
      if (i % 2 == 1) cold = cold == 7 ? 3 : cold + 1;
      hits += use(c, k) ? 1 : 0;
      ++total;
    }
    return static_cast<double>(hits) / total;
  };
  const double lru = run("lru"), lfu = run("lfu");
  EXPECT_GT(lfu, lru) << "lru " << lru << " lfu " << lfu;
  EXPECT_GT(lfu, 0.45);
}

}  // namespace
}  // namespace moe
