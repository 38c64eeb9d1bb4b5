// The planner's pure functions: bytes per component from a recipe, tiers, offload ratio and the
// tokens/s bound, on a config with round numbers.
#include <gtest/gtest.h>

#include "runtime/model/config.h"
#include "runtime/offload/plan.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

ModelConfig mixtral_like() {
  test::json j = test::base_config("mixtral");
  j["num_local_experts"] = 8;
  j["intermediate_size"] = 256;
  j["hidden_size"] = 128;
  j["num_hidden_layers"] = 4;
  return parse_model_config(j.dump(), test::fake_source());
}

TEST(Plan, CpuPlanPutsDenseFirstAndBoundsByTheSlowerTier) {
  const ModelConfig c = mixtral_like();
  const QuantRecipe q4 = QuantRecipe::parse("q4");
  PlanInputs in;
  in.context = 64;
  in.prefill_chunk = 16;
  in.host_mem = 0;
  in.bw.dram = 10e9;
  in.bw.nvme = 1e9;
  // One expert: 3 x 256 x 128 weights at 4.5 bits = 55296 bytes.
  const uint64_t expert = 3 * 256 * 128 * 9 / 16;
  // Everything fits: no drive term.
  in.host_mem = uint64_t{64} << 20;
  MemoryPlan all = make_plan(c, q4, in);
  EXPECT_EQ(all.expert_size, expert);
  EXPECT_EQ(all.experts_total, 32);
  EXPECT_EQ(all.experts_ram, 32);
  EXPECT_EQ(all.experts_nvme, 0);
  EXPECT_DOUBLE_EQ(all.offload_ratio, 0);
  EXPECT_DOUBLE_EQ(all.t_nvme, 0);
  EXPECT_NEAR(all.tokens_per_s_bound, 10e9 / static_cast<double>(all.fast_bytes_per_token), 1e-6);
  // Room for 8 slots (+1 staging) after the dense part: 24 experts on the drive; per token
  // 4 layers x 2 experts x 24/32 are read from it.
  const uint64_t slot = (expert + 4095) / 4096 * 4096;
  in.host_mem = all.dense_bytes + all.kv_bytes + all.workspace_bytes + 9 * slot + 100;
  const MemoryPlan part = make_plan(c, q4, in);
  EXPECT_EQ(part.experts_ram, 8);
  EXPECT_EQ(part.experts_nvme, 24);
  EXPECT_DOUBLE_EQ(part.nvme_reads_per_token, 6.0);
  EXPECT_NEAR(part.t_nvme, 6.0 * static_cast<double>(slot) / 1e9, 1e-12);
  EXPECT_NEAR(part.offload_ratio,
              24.0 * static_cast<double>(expert) / static_cast<double>(part.dense_bytes + part.expert_bytes), 1e-12);
  EXPECT_NEAR(part.tokens_per_s_bound, 1 / std::max(part.t_fast, part.t_nvme), 1e-9);
  EXPECT_NEAR(part.tokens_per_s_no_overlap, 1 / (part.t_fast + part.t_nvme), 1e-9);
  EXPECT_NE(format_plan(part, in).find("8 in RAM, 24 on NVMe"), std::string::npos) << format_plan(part, in);
}

TEST(Plan, GpuPlanAndTooSmallBudgets) {
  const ModelConfig c = mixtral_like();
  const QuantRecipe q = QuantRecipe::parse("mixed-4-2");
  PlanInputs in;
  in.context = 64;
  in.gpu_mem = uint64_t{1} << 20;
  in.host_mem = uint64_t{1} << 30;
  in.bw = Bandwidths{.device = 1000e9, .link = 25e9, .dram = 50e9, .nvme = 5e9};
  const MemoryPlan p = make_plan(c, q, in);
  EXPECT_TRUE(p.gpu);
  EXPECT_EQ(p.experts_vram + p.experts_ram + p.experts_nvme, 32);
  EXPECT_EQ(p.experts_nvme, 0);
  EXPECT_GT(p.link_misses_per_token, 0);
  EXPECT_GT(p.tokens_per_s_bound, 0);
  in.gpu_mem = 1000;
  EXPECT_ERROR_CONTAINS(make_plan(c, q, in), {"--gpu-mem", "is too small", "dense weights"});
  in.gpu_mem = 0;
  in.host_mem = 1000;
  EXPECT_ERROR_CONTAINS(make_plan(c, q, in), {"--host-mem", "is too small"});
  // Unknown bandwidth: no bound rather than a wrong one.
  in.host_mem = uint64_t{1} << 30;
  in.bw = Bandwidths{};
  EXPECT_EQ(make_plan(c, q, in).tokens_per_s_bound, 0);
}

}  // namespace
}  // namespace moe
