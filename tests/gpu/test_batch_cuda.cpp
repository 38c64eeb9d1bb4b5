// The batch engine on the CUDA backend: B = 1..8 sequences with prompts of different lengths
// batched (decode rows and prefill chunks in one step, paged KV blocks) give the greedy tokens of
// running each prompt alone on the GPU, logits within the resident tolerance, on every golden
// fixture. The CPU version is tests/batch/test_batch_equality.cpp.
#include <cstdlib>
#include <filesystem>

#include "gpu_test_util.h"
#include "tests/batch/batch_test_util.h"
#include "tests/offload/offload_stores.h"

namespace moe {
namespace {

std::filesystem::path golden(const std::string& name) {
  const char* env = std::getenv("MOE_TEST_DATA_DIR");
  return std::filesystem::path(env != nullptr ? env : MOE_TEST_DATA_DIR) / "golden" / name;
}

TEST(CudaBatch, BatchedEqualsSerial) {
  MOE_CUDA_OR_SKIP(gpu);
  for (const char* name : {"mixtral_sharded_bf16", "mixtral_window_fused_f32", "olmoe_clip_f16",
                           "qwen2_moe_shared_tied_bf16", "qwen3_moe_qknorm_bf16"}) {
    std::unique_ptr<Model> m = Model::load(golden(name), gpu);
    const auto prompts = test::mixed_prompts(8, m->config().vocab_size, 77u);
    std::vector<test::SeqRun> serial;
    for (const auto& p : prompts) serial.push_back(test::serial_run(*m, gpu, p, 6));
    for (size_t b = 1; b <= prompts.size(); ++b) {
      const std::vector<std::vector<int32_t>> batch(prompts.begin(), prompts.begin() + static_cast<std::ptrdiff_t>(b));
      const auto got = test::batched_run(*m, gpu, batch, 6, test::BatchSetup{});
      for (size_t i = 0; i < b; ++i) {
        EXPECT_EQ(got[i].tokens, serial[i].tokens) << name << " B=" << b << " sequence " << i;
        EXPECT_LE(test::max_abs_diff(got[i].logits, serial[i].logits), 2e-4f)
            << name << " B=" << b << " sequence " << i;
      }
    }
  }
}

}  // namespace
}  // namespace moe
