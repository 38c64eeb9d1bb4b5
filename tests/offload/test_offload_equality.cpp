// Offloaded output equals resident output: the same greedy tokens and the same logits (the
// resident path's tolerance; in practice bit-identical) on tiny packed stores, for every cache
// policy, miss policy, budget from one slot to every expert, prefetch depth, with and without
// the cache, and with static placement. Also: the stats add up, and a read error or a budget too
// small for the dense part gives a clear error with the numbers.
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
#include "tests/offload/offload_stores.h"

namespace moe {
namespace {

constexpr int64_t kChunk = 4;  // prefill chunk: the 7-token prompt takes two forward calls
const std::vector<int32_t> kPrompt = {1, 200, 37, 411, 5, 90, 12};

struct RunResult {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
  OffloadStepStats total;
  int64_t slots = 0;
};

RunResult generate_with(const std::filesystem::path& dir, const OffloadOptions* o, double expert_fraction = 0,
                        std::span<const ExpertKey> placement = {}, int64_t steps = 8) {
  CpuBackend backend(1);
  // Offloaded: the routed experts stay in the file (as `moe run --host-mem` loads them).
  std::unique_ptr<Model> m =
      Model::load(dir, backend, nullptr, true, o ? ExpertBinding::kMapped : ExpertBinding::kResident);
  Transformer t(m->config(), m->weights(), m->layout(), backend, kChunk);
  KvCache cache(backend, m->config(), m->layout(), 32);
  std::unique_ptr<ExpertOffload> off;
  if (o) {
    off = ExpertOffload::create(*m, backend, kChunk, cache.bytes(),
                                OffloadBudget{.host_mem = std::nullopt,
                                              .expert_mem = std::nullopt,
                                              .expert_fraction = expert_fraction,
                                              .gpu_mem = std::nullopt,
                                              .vram_fraction = std::nullopt},
                                *o);
    if (!placement.empty()) off->experts().place_static(placement, off->budget().slots / 2);
    t.set_expert_provider(&off->experts());
  }
  GenerationOptions g;
  g.max_new_tokens = steps;
  g.keep_logits = true;
  const GenerationResult r = generate(t, cache, m->config().vocab_size, kPrompt, g);
  RunResult out{r.tokens, r.logits, {}, 0};
  if (off) {
    out.total = off->experts().stats().total();
    out.slots = off->budget().slots;
  }
  return out;
}

void expect_same(const RunResult& ref, const RunResult& got, const std::string& what) {
  EXPECT_EQ(got.tokens, ref.tokens) << what;
  ASSERT_EQ(got.logits.size(), ref.logits.size()) << what;
  EXPECT_LE(test::max_abs_diff(ref.logits, got.logits), 2e-4f) << what;
}

using OffloadFixture = test::OffloadStores;

// budget fraction x cache policy x miss policy x prefetch depth
using Combo = std::tuple<double, const char*, MissPolicy, int>;

class OffloadEquality : public OffloadFixture, public ::testing::WithParamInterface<Combo> {};

TEST_P(OffloadEquality, SameTokensAndLogitsAsResident) {
  const auto [fraction, policy, miss, depth] = GetParam();
  for (const char* recipe : {"q4", "attn=keep"}) {
    const RunResult ref = generate_with(store(recipe), nullptr);
    OffloadOptions o;
    o.cache_policy = policy;
    o.miss_policy = miss;
    o.prefetch_depth = depth;
    const RunResult got = generate_with(store(recipe), &o, fraction);
    expect_same(ref, got,
                str_cat(recipe, " budget ", fraction, " (", got.slots, " slots) ", policy, " ", miss_policy_name(miss),
                        " depth ", depth));
    EXPECT_EQ(got.total.hits + got.total.misses, got.total.used);
    EXPECT_GT(got.total.bytes_nvme, 0u);
    if (depth == 0) {
      EXPECT_EQ(got.total.prefetch.predicted, 0u);
    } else {
      EXPECT_GT(got.total.prefetch.predicted, 0u);
    }
    if (miss == MissPolicy::kCpu) {
      EXPECT_EQ(got.total.streamed, got.total.misses);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, OffloadEquality,
                         ::testing::Combine(::testing::Values(0.0, 0.25, 0.5, 1.0), ::testing::Values("lru", "lfu"),
                                            ::testing::Values(MissPolicy::kFetch, MissPolicy::kCpu, MissPolicy::kAuto),
                                            ::testing::Values(0, 1, 2)),
                         [](const ::testing::TestParamInfo<Combo>& p) {
                           return str_cat("mem", static_cast<int>(100 * std::get<0>(p.param)), "_",
                                          std::get<1>(p.param), "_", miss_policy_name(std::get<2>(p.param)), "_depth",
                                          std::get<3>(p.param));
                         });

TEST_F(OffloadFixture, AblationsAndQ2AndStaticPlacementMatchToo) {
  const RunResult ref = generate_with(store("mixed-4-2"), nullptr);
  const double half = 0.5;
  OffloadOptions no_cache;
  no_cache.cache = false;
  expect_same(ref, generate_with(store("mixed-4-2"), &no_cache, half), "no cache");
  OffloadOptions naive;
  naive.cache = false;
  naive.prefetch_depth = 0;
  naive.lookahead = false;
  const RunResult n = generate_with(store("mixed-4-2"), &naive, half);
  expect_same(ref, n, "naive");
  EXPECT_EQ(n.total.hits, 0u) << "nothing is kept between uses";
  OffloadOptions no_admission;  // every prediction read at once, over any victim
  no_admission.prefetch_admission = false;
  const RunResult na = generate_with(store("mixed-4-2"), &no_admission, half);
  expect_same(ref, na, "no prefetch admission");
  EXPECT_EQ(na.total.prefetch_refused, 0u);
  OffloadOptions pread;
  pread.reader = ReaderKind::kPread;
  expect_same(ref, generate_with(store("mixed-4-2"), &pread, half), "pread reader");
  OffloadOptions placed;
  const std::vector<ExpertKey> hot = {{0, 1}, {1, 2}, {2, 3}, {0, 4}, {1, 5}};
  expect_same(ref, generate_with(store("mixed-4-2"), &placed, half, hot), "static placement");
}

TEST_F(OffloadFixture, FullBudgetReadsEveryExpertAtMostOnce) {
  OffloadOptions o;
  o.prefetch_depth = 0;
  const RunResult got = generate_with(store("q4"), &o, 1.0, {}, 16);
  EXPECT_EQ(got.slots, 24);
  EXPECT_EQ(got.total.evictions, 0u);
  EXPECT_LE(got.total.misses, 24u);
  EXPECT_GT(got.total.bytes_nvme, 0u);
  EXPECT_GT(got.total.hit_rate(), 0.5);
}

TEST_F(OffloadFixture, ReadErrorNamesFileExpertAndBytes) {
  // Copy the store and cut experts.bin short after it is opened (checksums verified first).
  test::TempDir tmp;
  std::filesystem::copy(store("q4"), tmp.path() / "q4", std::filesystem::copy_options::recursive);
  const std::filesystem::path experts = tmp.path() / "q4" / "experts.bin";
  CpuBackend backend(1);
  std::unique_ptr<Model> m = Model::load(tmp.path() / "q4", backend);
  Transformer t(m->config(), m->weights(), m->layout(), backend, kChunk);
  KvCache cache(backend, m->config(), m->layout(), 32);
  OffloadOptions o;
  auto off = ExpertOffload::create(*m, backend, kChunk, cache.bytes(),
                                   OffloadBudget{.host_mem = std::nullopt,
                                                 .expert_mem = 0,
                                                 .expert_fraction = std::nullopt,
                                                 .gpu_mem = std::nullopt,
                                                 .vram_fraction = std::nullopt},
                                   o);
  t.set_expert_provider(&off->experts());
  std::filesystem::resize_file(experts, 4096);
  std::vector<float> logits;
  EXPECT_ERROR_CONTAINS(
      t.forward(kPrompt, cache, false, logits),
      {experts.string(), ": reading expert ", "bytes at offset", "the file is shorter than its manifest says"});
}

TEST_F(OffloadFixture, BudgetTooSmallForTheDensePart) {
  CpuBackend backend(1);
  std::unique_ptr<Model> m = Model::load(store("q4"), backend);
  OffloadOptions o;
  EXPECT_ERROR_CONTAINS(ExpertOffload::create(*m, backend, kChunk, 1 << 20,
                                              OffloadBudget{.host_mem = 100000,
                                                            .expert_mem = std::nullopt,
                                                            .expert_fraction = std::nullopt,
                                                            .gpu_mem = std::nullopt,
                                                            .vram_fraction = std::nullopt},
                                              o),
                        {"--host-mem 97.7 KiB (100000 bytes) is too small", "dense weights", "KV cache (1.0 MiB)",
                         "use --host-mem of at least"});
}

TEST_F(OffloadFixture, RefusesASafetensorsDirectory) {
  CpuBackend backend(1);
  std::unique_ptr<Model> m = Model::load(checkpoint(), backend);
  OffloadOptions o;
  EXPECT_ERROR_CONTAINS(ExpertOffload::create(*m, backend, kChunk, 0, OffloadBudget{}, o),
                        {"hf", "packed store", "moe convert"});
}

}  // namespace
}  // namespace moe
