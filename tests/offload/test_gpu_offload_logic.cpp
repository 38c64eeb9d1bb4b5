// The GPU tiers' bookkeeping (GpuOffloadedExperts: VRAM cache over pinned RAM over NVMe, copies by
// ticket, fences, CPU-computed misses, speculative prefetch), run on the CPU backend against a CPU
// fake of the device slots and copy queue (fake_device_slots.h): offloaded generation equals
// resident generation for every VRAM budget x miss policy x prefetch depth, with copies that
// complete as late as the contract allows; no slot is overwritten while in use; eviction never
// blocks the host; the cost model decides the auto policy; budgets account the device side first.
#include <gtest/gtest.h>

#include <filesystem>
#include <tuple>

#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/generator.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/offload/expert_offload.h"
#include "runtime/quant/convert.h"
#include "tests/model/model_test_util.h"
#include "tests/offload/fake_device_slots.h"
#include "tests/offload/offload_stores.h"

namespace moe {
namespace {

constexpr int64_t kChunk = 4;  // the 7-token prompt takes two forward calls
const std::vector<int32_t> kPrompt = {1, 200, 37, 411, 5, 90, 12};

struct TierRun {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
  OffloadStepStats total;
  int64_t vram_slots = 0, host_slots = 0;
  int64_t violations = 0, host_waits = 0, fences = 0;
  uint64_t copies = 0, registered = 0;
  std::string describe;
};

struct TierSetup {
  double vram = 0.25;  // fraction of the experts with a VRAM slot (at least one)
  double host = 1.0;   // with a RAM slot
  int64_t complete_per_poll = 1;
};

TierRun run_gpu_tiers(const std::filesystem::path& dir, const OffloadOptions* o, const TierSetup& s = {},
                      int64_t steps = 8) {
  CpuBackend backend(1);
  std::unique_ptr<Model> m =
      Model::load(dir, backend, nullptr, true, o ? ExpertBinding::kMapped : ExpertBinding::kResident);
  Transformer t(m->config(), m->weights(), m->layout(), backend, kChunk);
  KvCache cache(backend, m->config(), m->layout(), 32);
  std::unique_ptr<ExpertOffload> off;
  test::FakeDeviceSlots* fake = nullptr;
  if (o) {
    OffloadBudget budget;
    budget.vram_fraction = s.vram;
    budget.expert_fraction = s.host;
    off = ExpertOffload::create(*m, backend, kChunk, cache.bytes(), budget, *o, [&](int64_t n, uint64_t bytes) {
      auto f = std::make_unique<test::FakeDeviceSlots>(backend, n, bytes, s.complete_per_poll);
      fake = f.get();
      return std::unique_ptr<DeviceExpertSlots>(std::move(f));
    });
    t.set_expert_provider(&off->provider());
  }
  GenerationOptions g;
  g.max_new_tokens = steps;
  g.keep_logits = true;
  const GenerationResult r = generate(t, cache, m->config().vocab_size, kPrompt, g);
  TierRun out{r.tokens, r.logits, {}, 0, 0, 0, 0, 0, 0, 0, {}};
  if (off) {
    EXPECT_TRUE(off->on_gpu());
    out.total = off->stats().total();
    out.vram_slots = off->vram_budget().slots;
    out.host_slots = off->budget().slots;
    out.violations = fake->violations();
    out.host_waits = fake->host_waits();
    out.fences = fake->fences();
    out.copies = fake->copies();
    out.registered = fake->registered();
    out.describe = off->describe();
  }
  return out;
}

void expect_same(const TierRun& ref, const TierRun& got, const std::string& what) {
  EXPECT_EQ(got.tokens, ref.tokens) << what;
  ASSERT_EQ(got.logits.size(), ref.logits.size()) << what;
  EXPECT_LE(test::max_abs_diff(ref.logits, got.logits), 2e-4f) << what;
  EXPECT_EQ(got.violations, 0) << what << ": a copy overwrote a slot in use";
}

using GpuTierFixture = test::OffloadStores;

// VRAM fraction x miss policy x prefetch depth
using Combo = std::tuple<double, MissPolicy, int>;

class GpuTierEquality : public GpuTierFixture, public ::testing::WithParamInterface<Combo> {};

TEST_P(GpuTierEquality, SameTokensAndLogitsAsResident) {
  const auto [vram, miss, depth] = GetParam();
  for (const char* recipe : {"q4", "attn=keep"}) {
    const TierRun ref = run_gpu_tiers(store(recipe), nullptr);
    // Copies completing one per poll (prompt), or only when waited for (as late as allowed), with
    // all experts in RAM or a small RAM tier.
    for (const TierSetup s : {TierSetup{vram, 1.0, 1}, TierSetup{vram, 0.25, 0}}) {
      OffloadOptions o;
      o.miss_policy = miss;
      o.prefetch_depth = depth;
      o.host_threads = 1;
      const TierRun got = run_gpu_tiers(store(recipe), &o, s);
      const std::string what =
          str_cat(recipe, " vram ", vram, " (", got.vram_slots, " slots) host ", s.host, " (", got.host_slots,
                  " slots) ", miss_policy_name(miss), " depth ", depth, " complete/poll ", s.complete_per_poll);
      expect_same(ref, got, what);
      EXPECT_EQ(got.total.hits + got.total.misses, got.total.used) << what;
      EXPECT_GT(got.total.bytes_nvme, 0u) << what;
      EXPECT_GT(got.registered, 0u) << what << ": the RAM slots are registered (pinned) with the device";
      if (miss == MissPolicy::kCpu) {
        EXPECT_EQ(got.total.host_computed, got.total.misses) << what;
      }
      if (miss == MissPolicy::kFetch) {
        EXPECT_EQ(got.total.host_computed, 0u) << what;
        EXPECT_GE(got.total.copies, got.total.misses) << what;
      }
      if (depth == 0) {
        EXPECT_EQ(got.total.prefetch.predicted, 0u) << what;
      } else {
        EXPECT_GT(got.total.prefetch.predicted, 0u) << what;
      }
      if (s.host == 1.0) {
        EXPECT_EQ(got.host_waits, 0) << what << ": with every expert fitting in RAM the host never waits on a copy";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, GpuTierEquality,
                         ::testing::Combine(::testing::Values(0.0, 0.25, 0.5, 1.0),
                                            ::testing::Values(MissPolicy::kFetch, MissPolicy::kCpu, MissPolicy::kAuto),
                                            ::testing::Values(0, 1, 2)),
                         [](const ::testing::TestParamInfo<Combo>& p) {
                           return str_cat("vram", static_cast<int>(100 * std::get<0>(p.param)), "_",
                                          miss_policy_name(std::get<1>(p.param)), "_depth", std::get<2>(p.param));
                         });

TEST_F(GpuTierFixture, AutoFollowsTheCostModel) {
  const TierRun ref = run_gpu_tiers(store("q4"), nullptr);
  OffloadOptions slow_link;
  slow_link.miss_policy = MissPolicy::kAuto;
  slow_link.link_gbs = 1e-6;  // a copy would take forever: every miss is computed on the CPU
  const TierRun a = run_gpu_tiers(store("q4"), &slow_link, TierSetup{0.25, 1.0, 1});
  expect_same(ref, a, "slow link");
  EXPECT_GT(a.total.misses, 0u);
  EXPECT_EQ(a.total.host_computed, a.total.misses);
  OffloadOptions slow_cpu;
  slow_cpu.miss_policy = MissPolicy::kAuto;
  slow_cpu.cpu_gbs = 1e-6;  // the CPU would take forever: every miss is fetched
  const TierRun b = run_gpu_tiers(store("q4"), &slow_cpu, TierSetup{0.25, 1.0, 1});
  expect_same(ref, b, "slow CPU");
  EXPECT_EQ(b.total.host_computed, 0u);
}

TEST_F(GpuTierFixture, AblationsAndQ2) {
  const TierRun ref = run_gpu_tiers(store("mixed-4-2"), nullptr);
  OffloadOptions full;
  const TierRun f = run_gpu_tiers(store("mixed-4-2"), &full, TierSetup{0.5, 1.0, 1});
  expect_same(ref, f, "full system");
  OffloadOptions no_prefetch;
  no_prefetch.prefetch_depth = 0;
  expect_same(ref, run_gpu_tiers(store("mixed-4-2"), &no_prefetch, TierSetup{0.5, 1.0, 1}), "no prefetch");
  OffloadOptions no_cache;
  no_cache.cache = false;
  expect_same(ref, run_gpu_tiers(store("mixed-4-2"), &no_cache, TierSetup{0.5, 1.0, 1}), "no cache");
  OffloadOptions naive;
  naive.cache = false;
  naive.prefetch_depth = 0;
  naive.lookahead = false;
  const TierRun n = run_gpu_tiers(store("mixed-4-2"), &naive, TierSetup{0.5, 1.0, 0});
  expect_same(ref, n, "naive");
  EXPECT_EQ(n.total.hits, 0u) << "nothing is kept in VRAM between uses";
  EXPECT_GE(n.fences, static_cast<int64_t>(n.total.used)) << "every expert's slot is fenced after its ops";
}

TEST_F(GpuTierFixture, FullVramBudgetCopiesEveryExpertAtMostOnce) {
  OffloadOptions o;
  o.prefetch_depth = 0;
  const TierRun got = run_gpu_tiers(store("q4"), &o, TierSetup{1.0, 1.0, 1}, 16);
  EXPECT_EQ(got.vram_slots, 24);
  EXPECT_EQ(got.total.evictions, 0u);
  EXPECT_LE(got.copies, 24u);
  EXPECT_EQ(got.total.copies, got.copies);
  EXPECT_GT(got.total.hit_rate(), 0.5);
  EXPECT_EQ(got.total.bytes_h2d, got.total.bytes_ram);
  EXPECT_NE(got.describe.find("fake VRAM slots"), std::string::npos) << got.describe;
}

TEST_F(GpuTierFixture, VramBudgetAccountsTheDeviceSideFirst) {
  CpuBackend backend(1);
  std::unique_ptr<Model> m = Model::load(store("q4"), backend, nullptr, true, ExpertBinding::kMapped);
  OffloadOptions o;
  auto fake = [&](int64_t n, uint64_t bytes) {
    return std::unique_ptr<DeviceExpertSlots>(std::make_unique<test::FakeDeviceSlots>(backend, n, bytes, 1));
  };
  OffloadBudget small;
  small.gpu_mem = 100000;
  small.expert_fraction = 1.0;
  EXPECT_ERROR_CONTAINS(ExpertOffload::create(*m, backend, kChunk, 1 << 20, small, o, fake),
                        {"--gpu-mem 97.7 KiB (100000 bytes) is too small", "dense weights", "KV cache (1.0 MiB)",
                         "use --gpu-mem of at least"});
  OffloadBudget roomy;
  roomy.gpu_mem = kDeviceOverheadBytes + (uint64_t{64} << 20);
  roomy.expert_fraction = 0.5;
  auto off = ExpertOffload::create(*m, backend, kChunk, 1 << 20, roomy, o, fake);
  ASSERT_TRUE(off->on_gpu());
  EXPECT_EQ(off->vram_budget().slots, 24) << "never more slots than experts";
  EXPECT_EQ(off->vram_budget().staging_slots, GpuOffloadedExperts::kDeviceStagingSlots);
  EXPECT_EQ(off->budget().slots, 12);
  EXPECT_EQ(off->budget().dense, 0u) << "the dense part is on the device";
  EXPECT_NE(off->vram_budget().describe("VRAM").find("VRAM "), std::string::npos);
}

}  // namespace
}  // namespace moe
