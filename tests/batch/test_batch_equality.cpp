// Batched generation equals one-at-a-time generation: B = 1..8 sequences with prompts of
// different lengths, submitted together to the batch engine (continuous batching, chunked prefill
// sharing steps with decodes, a paged KV pool with small blocks handed out interleaved) give the
// same greedy tokens as generate() run on each prompt alone, with every step's logits within the
// resident tolerance (2e-4; in practice bit-identical, since a row's result depends on no other
// row). On every golden fixture (all four architectures and their variants) as stored, and on a
// tiny model of each architecture quantized to q4 (the fixtures' odd widths admit no group size),
// resident and with the routed experts offloaded (half of them in RAM slots, the rest read from
// the packed store when needed).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "runtime/model/synthetic_model.h"
#include "runtime/offload/expert_offload.h"
#include "runtime/quant/convert.h"
#include "tests/batch/batch_test_util.h"
#include "tests/model/model_test_util.h"
#include "tests/offload/offload_stores.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kSteps = 6;
constexpr size_t kMaxBatch = 8;

fs::path golden(const std::string& name) {
  return fs::path(MOE_TEST_DATA_DIR) / "golden" / name;
}

const std::vector<std::string>& fixtures() {
  static const std::vector<std::string> names = {"mixtral_sharded_bf16", "mixtral_window_fused_f32", "olmoe_clip_f16",
                                                 "qwen2_moe_shared_tied_bf16", "qwen3_moe_qknorm_bf16"};
  return names;
}

enum class Variant { kStored, kQ4, kQ4Offloaded };

std::string variant_name(Variant v) {
  switch (v) {
    case Variant::kStored: return "stored";
    case Variant::kQ4: return "q4";
    case Variant::kQ4Offloaded: return "q4_offloaded";
  }
  return "";
}

const std::vector<std::string>& architectures() {
  static const std::vector<std::string> names = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"};
  return names;
}

// q4 packed stores of a tiny model of every architecture, written once for the suite.
class BatchEquality : public ::testing::TestWithParam<std::tuple<std::string, Variant>> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    for (const std::string& arch : architectures()) {
      SyntheticModelSpec spec = tiny_model_spec(arch);
      write_synthetic_model(spec, dir_->path() / (arch + "-hf"));
      convert_checkpoint(dir_->path() / (arch + "-hf"), QuantRecipe::parse("q4"), QuantizeOptions{},
                         dir_->path() / arch);
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static inline test::TempDir* dir_ = nullptr;
};

void expect_same(const test::SeqRun& want, const test::SeqRun& got, const std::string& what) {
  EXPECT_EQ(got.tokens, want.tokens) << what;
  EXPECT_EQ(got.finish, FinishReason::kLength) << what;
  ASSERT_EQ(got.logits.size(), want.logits.size()) << what;
  EXPECT_LE(test::max_abs_diff(want.logits, got.logits), 2e-4f) << what;
}

TEST_P(BatchEquality, SameTokensAndLogitsAsSerial) {
  const auto& [fixture, variant] = GetParam();
  const fs::path dir = variant == Variant::kStored ? golden(fixture) : dir_->path() / fixture;
  CpuBackend backend(1);
  std::unique_ptr<Model> resident = Model::load(dir, backend);
  const std::vector<std::vector<int32_t>> prompts =
      test::mixed_prompts(kMaxBatch, resident->config().vocab_size, 1234u);
  std::vector<test::SeqRun> serial;
  for (const auto& p : prompts) serial.push_back(test::serial_run(*resident, backend, p, kSteps));

  // The batched runs: resident, or over a model whose experts stay in the file (offloading).
  std::unique_ptr<Model> offloaded;
  if (variant == Variant::kQ4Offloaded) offloaded = Model::load(dir, backend, nullptr, true, ExpertBinding::kMapped);
  const Model& m = offloaded ? *offloaded : *resident;
  test::BatchSetup setup;
  for (size_t b = 1; b <= kMaxBatch; ++b) {
    std::unique_ptr<ExpertOffload> off;
    if (offloaded) {
      OffloadOptions o;
      o.prefetch_depth = 1;
      off = ExpertOffload::create(m, backend, setup.max_step_tokens, 0,
                                  OffloadBudget{.host_mem = std::nullopt,
                                                .expert_mem = std::nullopt,
                                                .expert_fraction = 0.5,
                                                .gpu_mem = std::nullopt,
                                                .vram_fraction = std::nullopt},
                                  o);
    }
    const std::vector<std::vector<int32_t>> batch(prompts.begin(), prompts.begin() + static_cast<std::ptrdiff_t>(b));
    const std::vector<test::SeqRun> got =
        test::batched_run(m, backend, batch, kSteps, setup, off ? &off->provider() : nullptr);
    for (size_t i = 0; i < b; ++i)
      expect_same(serial[i], got[i],
                  fixture + " " + variant_name(variant) + " B=" + std::to_string(b) + " sequence " + std::to_string(i) +
                      " (prompt of " + std::to_string(prompts[i].size()) + " tokens)");
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BatchEquality,
                         ::testing::Combine(::testing::ValuesIn(fixtures()), ::testing::Values(Variant::kStored)),
                         [](const auto& p) { return std::get<0>(p.param) + "_" + variant_name(std::get<1>(p.param)); });
INSTANTIATE_TEST_SUITE_P(Quantized, BatchEquality,
                         ::testing::Combine(::testing::ValuesIn(architectures()),
                                            ::testing::Values(Variant::kQ4, Variant::kQ4Offloaded)),
                         [](const auto& p) { return std::get<0>(p.param) + "_" + variant_name(std::get<1>(p.param)); });

// The same equality when the engine must queue and preempt: 8 requests through 3 sequence slots,
// and a KV pool too small for all of them at once (decodes that need a block preempt the newest
// sequence, which is recomputed later). Nothing is lost and every sequence matches.
TEST(BatchScheduling, QueueingAndPreemptionKeepTheResults) {
  CpuBackend backend(1);
  std::unique_ptr<Model> m = Model::load(golden("mixtral_window_fused_f32"), backend);
  const auto prompts = test::mixed_prompts(8, m->config().vocab_size, 99u);
  std::vector<test::SeqRun> serial;
  for (const auto& p : prompts) serial.push_back(test::serial_run(*m, backend, p, 10));

  struct Case {
    const char* what;
    test::BatchSetup setup;
    bool expect_preemption;
  };
  const Case cases[] = {
      {"3 slots", test::BatchSetup{3, 8, 4, 0, 64}, false},
      {"pool of 16 blocks", test::BatchSetup{8, 16, 4, 16, 64}, true},
      {"blocks of 2, a pool of 20", test::BatchSetup{8, 8, 2, 20, 64}, true},
  };
  for (const Case& c : cases) {
    BatchEngineStats stats;
    const auto got = test::batched_run(*m, backend, prompts, 10, c.setup, nullptr, &stats);
    for (size_t i = 0; i < prompts.size(); ++i)
      expect_same(serial[i], got[i], std::string(c.what) + ": sequence " + std::to_string(i));
    if (c.expect_preemption) {
      EXPECT_GT(stats.preemptions, 0u) << c.what;
    }
    EXPECT_EQ(stats.requests_finished[static_cast<size_t>(FinishReason::kLength)], prompts.size()) << c.what;
    EXPECT_EQ(stats.kv_blocks_used, 0) << c.what << ": every block returned";
    EXPECT_EQ(stats.generated_tokens, 10 * prompts.size()) << c.what;
  }
}

}  // namespace
}  // namespace moe
