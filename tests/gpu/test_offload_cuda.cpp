// GPU expert offloading (GpuOffloadedExperts over the CUDA backend's VRAM slots and copy stream):
// generation with the experts offloaded to VRAM slots over pinned RAM over the packed store gives
// the same greedy tokens as the resident model on the GPU, and logits within 2e-4, for several VRAM
// budgets x miss policies x prefetch depths, on q4 / q2 / unquantized stores (the copies go through
// the device-side repack). Skipped with "no CUDA device: skipped" where there is no GPU.
#include <filesystem>
#include <tuple>

#include "gpu_test_util.h"
#include "runtime/engine/generator.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/offload/expert_offload.h"
#include "runtime/quant/convert.h"
#include "tests/model/model_test_util.h"
#include "tests/offload/offload_stores.h"

namespace moe {
namespace {

constexpr int64_t kChunk = 4;  // the 7-token prompt takes two forward calls (a 4-row and a 3-row piece)
const std::vector<int32_t> kPrompt = {1, 200, 37, 411, 5, 90, 12};

struct GpuRun {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
  OffloadStepStats total;
  int64_t vram_slots = 0;
};

GpuRun generate_on(Backend& gpu, const std::filesystem::path& dir, const OffloadOptions* o, double vram = 0,
                   double host = 1.0) {
  std::unique_ptr<Model> m =
      Model::load(dir, gpu, nullptr, true, o ? ExpertBinding::kMapped : ExpertBinding::kResident);
  Transformer t(m->config(), m->weights(), m->layout(), gpu, kChunk);
  KvCache cache(gpu, m->config(), m->layout(), 32);
  std::unique_ptr<ExpertOffload> off;
  if (o) {
    OffloadBudget budget;
    budget.vram_fraction = vram;
    budget.expert_fraction = host;
    off = ExpertOffload::create(*m, gpu, kChunk, cache.bytes(), budget, *o);
    t.set_expert_provider(&off->provider());
  }
  GenerationOptions g;
  g.max_new_tokens = 8;
  g.keep_logits = true;
  const GenerationResult r = generate(t, cache, m->config().vocab_size, kPrompt, g);
  GpuRun out{r.tokens, r.logits, {}, 0};
  if (off) {
    EXPECT_TRUE(off->on_gpu());
    out.total = off->stats().total();
    out.vram_slots = off->vram_budget().slots;
  }
  return out;
}

using CudaOffloadFixture = test::OffloadStores;

using Combo = std::tuple<double, MissPolicy, int>;
class CudaOffloadEquality : public CudaOffloadFixture, public ::testing::WithParamInterface<Combo> {};

TEST_P(CudaOffloadEquality, SameTokensAndLogitsAsResidentOnTheGpu) {
  MOE_CUDA_OR_SKIP(gpu);
  const auto [vram, miss, depth] = GetParam();
  for (const char* recipe : {"q4", "attn=keep", "mixed-4-2"}) {
    const GpuRun ref = generate_on(gpu, store(recipe), nullptr);
    for (const double host : {1.0, 0.25}) {
      OffloadOptions o;
      o.miss_policy = miss;
      o.prefetch_depth = depth;
      const GpuRun got = generate_on(gpu, store(recipe), &o, vram, host);
      const std::string what = str_cat(recipe, " vram ", vram, " (", got.vram_slots, " slots) host ", host, " ",
                                       miss_policy_name(miss), " depth ", depth);
      EXPECT_EQ(got.tokens, ref.tokens) << what;
      ASSERT_EQ(got.logits.size(), ref.logits.size()) << what;
      EXPECT_LE(test::max_abs_diff(ref.logits, got.logits), 2e-4f) << what;
      EXPECT_EQ(got.total.hits + got.total.misses, got.total.used) << what;
      if (miss == MissPolicy::kCpu) {
        EXPECT_EQ(got.total.host_computed, got.total.misses) << what;
      }
      if (miss == MissPolicy::kFetch) {
        EXPECT_EQ(got.total.host_computed, 0u) << what;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, CudaOffloadEquality,
                         ::testing::Combine(::testing::Values(0.0, 0.25, 1.0),
                                            ::testing::Values(MissPolicy::kFetch, MissPolicy::kCpu, MissPolicy::kAuto),
                                            ::testing::Values(0, 2)),
                         [](const ::testing::TestParamInfo<Combo>& p) {
                           return str_cat("vram", static_cast<int>(100 * std::get<0>(p.param)), "_",
                                          miss_policy_name(std::get<1>(p.param)), "_depth", std::get<2>(p.param));
                         });

TEST_F(CudaOffloadFixture, NoCacheAndNaiveMatchToo) {
  MOE_CUDA_OR_SKIP(gpu);
  const GpuRun ref = generate_on(gpu, store("mixed-4-2"), nullptr);
  OffloadOptions no_cache;
  no_cache.cache = false;
  OffloadOptions naive = no_cache;
  naive.prefetch_depth = 0;
  naive.lookahead = false;
  for (const OffloadOptions* o : {&no_cache, &naive}) {
    const GpuRun got = generate_on(gpu, store("mixed-4-2"), o, 0.5);
    EXPECT_EQ(got.tokens, ref.tokens);
    ASSERT_EQ(got.logits.size(), ref.logits.size());
    for (size_t i = 0; i < ref.logits.size(); ++i) ASSERT_NEAR(got.logits[i], ref.logits[i], 2e-4f) << i;
  }
}

}  // namespace
}  // namespace moe
