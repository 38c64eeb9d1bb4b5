// Pipeline parallelism on one process: a 4-layer model split into stage A (layers [0, 2)) and
// stage B (layers [2, 4)), with A's residual stream copied into B by hand, must give the same
// logits as the whole model. Both paths run the same kernels in the same order on the same
// data (the split only moves where the hidden rows live), so the logits are asserted
// bit-identical, not merely close.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/sampler.h"
#include "runtime/engine/transformer.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

constexpr int64_t kLayers = 4;
constexpr int64_t kCapacity = 16;

ParallelLayout stage_a() {
  return ParallelLayout(1, 0, 2, 0, LayerRange{0, 2}, kLayers);
}
ParallelLayout stage_b() {
  return ParallelLayout(1, 0, 2, 1, LayerRange{2, 4}, kLayers);
}

// Copies rows [0, n) of `from`'s residual stream into `to`'s through host memory.
void hand_over(CpuBackend& backend, Transformer& from, Transformer& to, int64_t n, int64_t hidden) {
  std::vector<float> rows(static_cast<size_t>(n * hidden));
  const uint64_t bytes = rows.size() * sizeof(float);
  backend.copy_to_host(from.hidden().first_rows(n), rows.data(), bytes);
  Tensor dst = to.hidden().first_rows(n);
  backend.copy_from_host(rows.data(), bytes, dst);
}

size_t count_bit_differences(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) ++n;
  return n;
}

TEST(PipelineSplit, TwoStagesMatchSingleLayoutBitForBit) {
  test::TempDir dir;
  SyntheticModelSpec spec = tiny_model_spec("mixtral");
  spec.num_layers = kLayers;
  write_synthetic_model(spec, dir.path());

  CpuBackend backend(1);
  const ParallelLayout la = stage_a(), lb = stage_b();
  const auto whole = Model::load(dir.path(), backend);
  const auto a = Model::load(dir.path(), backend, &la);
  const auto b = Model::load(dir.path(), backend, &lb);
  const ModelConfig& c = whole->config();
  ASSERT_EQ(c.num_layers, kLayers);
  const size_t vocab = static_cast<size_t>(c.vocab_size);

  // Each stage binds only what it runs.
  EXPECT_EQ(a->weights().layers.size(), 2u);
  EXPECT_EQ(b->weights().layers.size(), 2u);
  EXPECT_EQ(a->weights().layers.front().index, 0);
  EXPECT_EQ(b->weights().layers.front().index, 2);
  EXPECT_FALSE(a->weights().embed.empty());
  EXPECT_TRUE(a->weights().lm_head.empty());
  EXPECT_TRUE(a->weights().final_norm.empty());
  EXPECT_TRUE(b->weights().embed.empty());
  EXPECT_FALSE(b->weights().lm_head.empty());
  EXPECT_EQ(a->weights().bytes + b->weights().bytes, whole->weights().bytes);

  Transformer single(c, whole->weights(), whole->layout(), backend, 8);
  Transformer ta(a->config(), a->weights(), a->layout(), backend, 8);
  Transformer tb(b->config(), b->weights(), b->layout(), backend, 8);
  KvCache cache(backend, c, whole->layout(), kCapacity);
  KvCache cache_a(backend, a->config(), a->layout(), kCapacity);
  KvCache cache_b(backend, b->config(), b->layout(), kCapacity);

  // Prefill of 7 tokens: logits at every position.
  const std::vector<int32_t> prompt = {1, 45, 300, 7, 511, 128, 9};
  const int64_t n = static_cast<int64_t>(prompt.size());
  std::vector<float> expected;
  single.forward(prompt, cache, /*all_logits=*/true, expected);

  ta.embed(prompt);
  ta.run_layers(n, cache_a);
  hand_over(backend, ta, tb, n, c.hidden_size);
  tb.run_layers(n, cache_b);
  std::vector<float> got(static_cast<size_t>(n) * vocab);
  for (int64_t t = 0; t < n; ++t) tb.logits_of_row(t, got.data() + static_cast<size_t>(t) * vocab);
  EXPECT_EQ(count_bit_differences(got, expected), 0u) << "prefill logits differ";
  EXPECT_EQ(cache.length(), n);
  EXPECT_EQ(cache_a.length(), n);
  EXPECT_EQ(cache_b.length(), n);

  // Three greedy decode steps, each token through both paths.
  int32_t next = argmax(std::span<const float>(expected.data() + static_cast<size_t>(n - 1) * vocab, vocab));
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE("decode step " + std::to_string(step));
    const int32_t one[1] = {next};
    single.forward(one, cache, false, expected);
    ta.embed(one);
    ta.run_layers(1, cache_a);
    hand_over(backend, ta, tb, 1, c.hidden_size);
    tb.run_layers(1, cache_b);
    got.assign(vocab, 0.0f);
    tb.logits_of_row(0, got.data());
    ASSERT_EQ(expected.size(), vocab);
    EXPECT_EQ(count_bit_differences(got, expected), 0u);
    next = argmax(expected);
  }
  EXPECT_EQ(cache_b.length(), n + 3);
}

TEST(PipelineSplit, StagesRefuseWorkOutsideTheirRole) {
  test::TempDir dir;
  SyntheticModelSpec spec = tiny_model_spec("mixtral");
  spec.num_layers = kLayers;
  write_synthetic_model(spec, dir.path());
  CpuBackend backend(1);
  const ParallelLayout la = stage_a(), lb = stage_b();
  const auto a = Model::load(dir.path(), backend, &la);
  const auto b = Model::load(dir.path(), backend, &lb);
  Transformer ta(a->config(), a->weights(), a->layout(), backend, 4);
  Transformer tb(b->config(), b->weights(), b->layout(), backend, 4);
  KvCache cache_a(backend, a->config(), a->layout(), kCapacity);
  std::vector<float> logits(static_cast<size_t>(a->config().vocab_size));
  const std::vector<int32_t> tokens = {1, 2};
  EXPECT_ERROR_CONTAINS(ta.forward(tokens, cache_a, false, logits), {"whole model", "layers [0, 2)"});
  EXPECT_ERROR_CONTAINS(ta.logits_of_row(0, logits.data()), {"not the last", "layers [0, 2)"});
  EXPECT_ERROR_CONTAINS(tb.forward(tokens, cache_a, false, logits), {"whole model", "layers [2, 4)"});
}

TEST(ParallelLayoutTest, Accessors) {
  const ParallelLayout a = stage_a(), b = stage_b();
  EXPECT_TRUE(a.is_first_stage());
  EXPECT_FALSE(a.is_last_stage());
  EXPECT_FALSE(b.is_first_stage());
  EXPECT_TRUE(b.is_last_stage());
  EXPECT_EQ(a.world_size(), 2);
  EXPECT_EQ(a.rank(), 0);
  EXPECT_EQ(b.rank(), 1);
  EXPECT_EQ(b.layers().size(), 2);
  EXPECT_TRUE(b.layers().contains(3));
  EXPECT_FALSE(b.layers().contains(1));
  const ParallelLayout s = ParallelLayout::single(4);
  EXPECT_TRUE(s.is_first_stage() && s.is_last_stage());
  EXPECT_EQ(s.tp_shard(8, "heads"), 8);
  const ParallelLayout tp(2, 1, 1, 0, LayerRange{0, 4}, 4);
  EXPECT_EQ(tp.tp_shard(8, "heads"), 4);
  EXPECT_ERROR_CONTAINS(tp.tp_shard(7, "num_key_value_heads"), {"num_key_value_heads", "7", "2"});
}

TEST(ParallelLayoutTest, RejectsBadRanges) {
  EXPECT_ERROR_CONTAINS(ParallelLayout(1, 0, 2, 0, LayerRange{2, 2}, 4), {"layer range [2, 2)", "4-layer"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(1, 0, 2, 0, LayerRange{3, 1}, 4), {"layer range [3, 1)"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(1, 0, 2, 0, LayerRange{-1, 2}, 4), {"layer range [-1, 2)"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(1, 0, 2, 1, LayerRange{2, 5}, 4), {"layer range [2, 5)", "4-layer"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(1, 0, 2, 2, LayerRange{2, 4}, 4), {"pp rank 2", "size 2"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(1, 0, 2, -1, LayerRange{2, 4}, 4), {"pp rank -1"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(1, 0, 0, 0, LayerRange{0, 4}, 4), {"pp rank 0", "size 0"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(2, 2, 1, 0, LayerRange{0, 4}, 4), {"tp rank 2", "size 2"});
  EXPECT_ERROR_CONTAINS(ParallelLayout(0, 0, 1, 0, LayerRange{0, 4}, 4), {"tp rank 0", "size 0"});
  EXPECT_ERROR_CONTAINS(ParallelLayout::single(0), {"layer range [0, 0)"});
}

TEST(ParallelLayoutTest, LoadRejectsRangeBeyondTheModel) {
  // A layout built for a deeper model than the checkpoint's config.
  test::TempDir dir;
  write_synthetic_model(tiny_model_spec("mixtral"), dir.path());  // 2 layers
  CpuBackend backend(1);
  const ParallelLayout deep(1, 0, 2, 1, LayerRange{2, 4}, 4);
  EXPECT_THROW(Model::load(dir.path(), backend, &deep), Error);
}

// The layout's layer count must agree with the config's: here the checkpoint holds 4 layers of
// tensors but config.json says 2, and a layout for layers [2, 4) of 4 must be refused up front
// (otherwise binding reads config.layer_is_moe[2..3] past its end).
TEST(ParallelLayoutTest, LoadRejectsLayoutForOtherLayerCount) {
  test::TempDir dir;
  SyntheticModelSpec spec = tiny_model_spec("mixtral");
  spec.num_layers = kLayers;
  write_synthetic_model(spec, dir.path());
  test::json cfg = test::read_json(dir / "config.json");
  cfg["num_hidden_layers"] = 2;
  test::write_json(dir / "config.json", cfg);
  CpuBackend backend(1);
  const ParallelLayout deep(1, 0, 2, 1, LayerRange{2, 4}, kLayers);
  EXPECT_ERROR_CONTAINS(Model::load(dir.path(), backend, &deep), {"num_hidden_layers", "2", "4"});
}

}  // namespace
}  // namespace moe
