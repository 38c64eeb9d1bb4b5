// Tier budgets: sizes from the command line, slots left after the dense part, and the error
// (with the numbers) when the budget is too small; the miss cost model.
#include <gtest/gtest.h>

#include "runtime/offload/budget.h"
#include "runtime/offload/miss_policy.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

TEST(Budget, ParsesSizes) {
  EXPECT_EQ(parse_mem_size("1000", "--host-mem"), 1000u);
  EXPECT_EQ(parse_mem_size("4K", "--host-mem"), 4096u);
  EXPECT_EQ(parse_mem_size("512M", "--host-mem"), 512ull << 20);
  EXPECT_EQ(parse_mem_size("24G", "--host-mem"), 24ull << 30);
  EXPECT_EQ(parse_mem_size("1.5GiB", "--host-mem"), 3ull << 29);
  EXPECT_EQ(parse_mem_size("2gb", "--gpu-mem"), 2ull << 30);
  EXPECT_ERROR_CONTAINS(parse_mem_size("lots", "--host-mem"), {"--host-mem", "'lots'", "not a size"});
  EXPECT_ERROR_CONTAINS(parse_mem_size("3X", "--gpu-mem"), {"--gpu-mem", "unknown unit 'X'"});
  EXPECT_EQ(format_bytes(3ull << 29), "1.50 GiB");
}

TEST(Budget, SlotsAfterDenseKvAndWorkspace) {
  const uint64_t mib = 1 << 20;
  const HostTierBudget b = plan_host_tier(100 * mib, 30 * mib, 5 * mib, 5 * mib, 4 * mib, 64, 1, 1);
  // 100 - 40 - 4 (staging) = 56 MiB: 14 slots.
  EXPECT_EQ(b.slots, 14);
  EXPECT_EQ(b.staging_slots, 1);
  EXPECT_LE(b.accounted(), b.host_mem);
  EXPECT_NEAR(b.resident_fraction(), 14.0 / 64, 1e-12);
  // Never more slots than experts.
  EXPECT_EQ(plan_host_tier(10000 * mib, 30 * mib, 0, 0, 4 * mib, 64).slots, 64);
  EXPECT_EQ(slots_for_expert_bytes(10 * mib, 4 * mib, 64), 2);
  EXPECT_EQ(slots_for_expert_bytes(0, 4 * mib, 64), 1);
  EXPECT_EQ(slots_for_expert_bytes(1000 * mib, 4 * mib, 64), 64);
}

TEST(Budget, TooSmallForTheDensePartSaysByHowMuch) {
  const uint64_t mib = 1 << 20;
  EXPECT_ERROR_CONTAINS(plan_host_tier(32 * mib, 30 * mib, 5 * mib, 1 * mib, 4 * mib, 64, 1, 1),
                        {"--host-mem 32.0 MiB (33554432 bytes) is too small", "dense weights (30.0 MiB)",
                         "KV cache (5.0 MiB)", "workspaces (1.0 MiB)", "take 36.0 MiB",
                         "2 expert slots of 4.0 MiB are needed", "at least 44.0 MiB (46137344 bytes)"});
}

TEST(MissPolicy, ParsesAndChoosesByPredictedTime) {
  EXPECT_EQ(parse_miss_policy("fetch"), MissPolicy::kFetch);
  EXPECT_EQ(parse_miss_policy("auto"), MissPolicy::kAuto);
  EXPECT_ERROR_CONTAINS(parse_miss_policy("wait"), {"--miss-policy", "fetch, cpu or auto", "'wait'"});
  // A 100 MB expert: over 25 GB/s PCIe 4 ms; on a 50 GB/s CPU 2 ms for one token.
  MissCost c{.expert_bytes = 100'000'000,
             .expert_weights = 200'000'000,
             .tokens = 1,
             .link_bytes_per_s = 25e9,
             .copy_queue_s = 0,
             .cpu_bytes_per_s = 50e9,
             .cpu_flops = 1e12,
             .gpu_expert_s = 0.0001};
  EXPECT_NEAR(fetch_seconds(c), 0.0041, 1e-9);
  EXPECT_NEAR(host_compute_seconds(c), 0.002, 1e-9);
  EXPECT_EQ(choose_miss_action(c), MissAction::kComputeOnHost);
  // Many tokens make the CPU compute-bound: 64 tokens x 0.4 ms.
  c.tokens = 64;
  EXPECT_EQ(choose_miss_action(c), MissAction::kFetch);
  // A long copy queue favours the CPU again.
  c.tokens = 1;
  c.copy_queue_s = 0.01;
  c.cpu_bytes_per_s = 20e9;
  EXPECT_EQ(choose_miss_action(c), MissAction::kComputeOnHost);
}

}  // namespace
}  // namespace moe
