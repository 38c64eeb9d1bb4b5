// NCCL at world size 1 on the GPU: the communicator's ops against a reference, and the forward
// pass driven through the distributed path (DistributedForward with an NCCL data plane, TP 1)
// giving the single-process tokens and logits on every golden fixture. NCCL refuses two ranks on
// one GPU, so this is what one GPU can check; multi-rank runs are tested over MPI (tests/parallel).
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "gpu_test_util.h"
#include "parallel/distributed_forward.h"
#ifdef MOE_HAVE_NCCL
#include "parallel/nccl_communicator.h"
#endif
#include "parallel/parallel_setup.h"
#include "parallel/thread_communicator.h"
#include "runtime/engine/generator.h"
#include "runtime/model/model.h"
#include "tests/offload/offload_stores.h"

namespace moe {
namespace {

[[maybe_unused]] std::filesystem::path golden(const std::string& name) {  // unused without NCCL
  const char* env = std::getenv("MOE_TEST_DATA_DIR");
  return std::filesystem::path(env != nullptr ? env : MOE_TEST_DATA_DIR) / "golden" / name;
}

TEST(NcclWorldOfOne, OpsAndForwardMatchOneProcess) {
#ifndef MOE_HAVE_NCCL
  GTEST_SKIP() << "built without NCCL: skipped";
#else
  MOE_CUDA_OR_SKIP(gpu);
  parallel::run_on_threads(1, [&](parallel::Communicator& control) {
    std::unique_ptr<parallel::NcclCommunicator> nccl = parallel::NcclCommunicator::create(control, 0);
    ASSERT_EQ(nccl->size(), 1);
    ASSERT_EQ(nccl->memory(), parallel::MemorySpace::kDevice);
    // all_reduce_sum / all_gather / broadcast on device memory at size 1 leave the values.
    std::vector<float> host(1000);
    for (size_t i = 0; i < host.size(); ++i) host[i] = 0.25f * static_cast<float>(i) - 7.0f;
    Tensor x = gpu.alloc(DType::kF32, {1000});
    Tensor y = gpu.alloc(DType::kF32, {1000});
    gpu.copy_from_host(host.data(), host.size() * sizeof(float), x);
    nccl->all_reduce_sum(x.as<float>(), host.size());
    nccl->all_gather(x.data, host.size() * sizeof(float), y.data);
    nccl->broadcast(y.data, host.size() * sizeof(float), 0);
    std::vector<float> back(host.size(), -1.0f);
    gpu.copy_to_host(y, back.data(), back.size() * sizeof(float));
    EXPECT_EQ(back, host);

    for (const char* name : {"mixtral_sharded_bf16", "mixtral_window_fused_f32", "olmoe_clip_f16",
                             "qwen2_moe_shared_tied_bf16", "qwen3_moe_qknorm_bf16"}) {
      std::unique_ptr<Model> m = Model::load(golden(name), gpu);
      const ModelConfig& c = m->config();
      const std::vector<int32_t> prompt = {1, 7, 42, 99, 3, 250, 11};
      GenerationOptions g;
      g.max_new_tokens = 6;
      g.keep_logits = true;
      Transformer alone(c, m->weights(), m->layout(), gpu, 4);
      KvCache cache1(gpu, c, m->layout(), 16);
      const GenerationResult want = generate(alone, cache1, c.vocab_size, prompt, g);

      parallel::StageComms comms = parallel::make_stage_comms(*nccl, m->layout(), gpu);
      Transformer t(c, m->weights(), m->layout(), gpu, 4);
      t.set_collectives(comms.collectives.get());
      KvCache cache2(gpu, c, m->layout(), 16);
      parallel::DistributedForward driver(t, m->layout(), control, *nccl, gpu, c.vocab_size);
      t.set_forward_delegate(&driver);
      const GenerationResult got = generate(t, cache2, c.vocab_size, prompt, g);
      driver.finish();
      EXPECT_EQ(got.tokens, want.tokens) << name;
      EXPECT_LE(test::max_abs_diff(got.logits, want.logits), 1e-5f) << name;
    }
  });
#endif
}

}  // namespace
}  // namespace moe
