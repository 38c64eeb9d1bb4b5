// Model::load / bind_weights over synthetic checkpoints in the Hugging Face layout: every
// architecture binds with the structure its config implies; damaged checkpoints (missing
// tensor, wrong shape, unsupported dtype, no lm_head) fail with messages naming the directory
// or file, the tensor and the problem; and the fused expert layout computes exactly the same
// logits as the per-expert layout of the same weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/transformer.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

using test::json;
using test::StoredTensor;

// ---------------------------------------------------------------- every architecture loads

class BindArch : public ::testing::TestWithParam<std::string> {};

TEST_P(BindArch, SyntheticModelLoadsWithTheConfigsStructure) {
  test::TempDir dir;
  const SyntheticModelSpec spec = tiny_model_spec(GetParam());
  write_synthetic_model(spec, dir.path());
  CpuBackend backend(1);
  const std::unique_ptr<Model> model = Model::load(dir.path(), backend);
  const ModelConfig& c = model->config();
  const ModelWeights& w = model->weights();
  const ArchSpec& a = *c.arch;

  EXPECT_EQ(a.hf_name, spec.architecture);
  EXPECT_EQ(c.num_layers, spec.num_layers);
  EXPECT_EQ(c.num_experts, spec.num_experts);
  EXPECT_EQ(model->layout().layers().begin, 0);
  EXPECT_EQ(model->layout().layers().end, c.num_layers);
  EXPECT_EQ(w.expert_form, ExpertForm::kPerExpert);
  EXPECT_GT(w.bytes, 0u);
  EXPECT_EQ(w.bytes, dynamic_cast<const SafetensorsSource&>(model->source())
                         .checkpoint()
                         .total_bytes());  // every stored tensor is used

  EXPECT_FALSE(w.embed.empty());
  EXPECT_EQ(w.embed.dim(0), c.vocab_size);
  EXPECT_EQ(w.embed.dim(1), c.hidden_size);
  EXPECT_FALSE(w.final_norm.empty());
  EXPECT_FALSE(w.lm_head.empty());
  EXPECT_NE(w.lm_head.data, w.embed.data);  // untied

  ASSERT_EQ(static_cast<int64_t>(w.layers.size()), c.num_layers);
  int64_t moe_layers = 0;
  for (size_t i = 0; i < w.layers.size(); ++i) {
    SCOPED_TRACE("layer " + std::to_string(i));
    const LayerWeights& L = w.layers[i];
    EXPECT_EQ(L.index, static_cast<int64_t>(i));
    EXPECT_FALSE(L.attn_norm.empty());
    EXPECT_FALSE(L.ffn_norm.empty());
    EXPECT_EQ(L.attn.q.dim(0), c.q_width());
    EXPECT_EQ(L.attn.q.dim(1), c.hidden_size);
    EXPECT_EQ(L.attn.k.dim(0), c.kv_width());
    EXPECT_EQ(L.attn.o.dim(1), c.q_width());
    EXPECT_EQ(!L.attn.q_bias.empty(), c.qkv_bias);
    EXPECT_EQ(!L.attn.k_bias.empty(), c.qkv_bias);
    EXPECT_EQ(!L.attn.v_bias.empty(), c.qkv_bias);
    EXPECT_EQ(!L.attn.o_bias.empty(), c.o_bias);
    switch (a.qk_norm) {
      case QkNorm::kNone:
        EXPECT_TRUE(L.attn.q_norm.empty());
        EXPECT_TRUE(L.attn.k_norm.empty());
        break;
      case QkNorm::kPerHead:
        ASSERT_FALSE(L.attn.q_norm.empty());
        EXPECT_EQ(L.attn.q_norm.numel(), c.head_dim);
        EXPECT_EQ(L.attn.k_norm.numel(), c.head_dim);
        break;
      case QkNorm::kFullWidth:
        ASSERT_FALSE(L.attn.q_norm.empty());
        EXPECT_EQ(L.attn.q_norm.numel(), c.q_width());
        EXPECT_EQ(L.attn.k_norm.numel(), c.kv_width());
        break;
    }
    EXPECT_EQ(L.is_moe, c.layer_is_moe[i]);
    if (L.is_moe) {
      ++moe_layers;
      EXPECT_EQ(L.moe.router.dim(0), c.num_experts);
      ASSERT_EQ(static_cast<int64_t>(L.moe.experts.size()), c.num_experts);
      for (const MlpWeights& e : L.moe.experts) {
        EXPECT_EQ(e.gate.dim(0), c.expert_intermediate);
        EXPECT_EQ(e.up.dim(0), c.expert_intermediate);
        EXPECT_EQ(e.down.dim(1), c.expert_intermediate);
      }
      EXPECT_EQ(!L.moe.shared_gate.empty(), a.shared_expert);
      EXPECT_EQ(!L.moe.shared.gate.empty(), a.shared_expert);
      if (a.shared_expert) {
        EXPECT_EQ(L.moe.shared.gate.dim(0), c.shared_intermediate);
      }
      EXPECT_TRUE(L.dense.gate.empty());
    } else {
      EXPECT_EQ(L.dense.gate.dim(0), c.dense_intermediate);
      EXPECT_EQ(L.dense.down.dim(1), c.dense_intermediate);
      EXPECT_TRUE(L.moe.experts.empty());
    }
  }
  const int64_t expected_moe = spec.num_layers / spec.decoder_sparse_step;
  EXPECT_EQ(moe_layers, expected_moe);
}

INSTANTIATE_TEST_SUITE_P(Archs, BindArch, ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"),
                         [](const auto& p) { return p.param; });

TEST(BindStructure, Qwen2MoeHasDenseLayersAndBiases) {
  // The tiny Qwen2-MoE spec: decoder_sparse_step 2 over 4 layers, qkv bias on.
  test::TempDir dir;
  write_synthetic_model(tiny_model_spec("qwen2_moe"), dir.path());
  CpuBackend backend(1);
  const auto model = Model::load(dir.path(), backend);
  const ModelWeights& w = model->weights();
  ASSERT_EQ(w.layers.size(), 4u);
  EXPECT_EQ((std::vector<bool>{w.layers[0].is_moe, w.layers[1].is_moe, w.layers[2].is_moe, w.layers[3].is_moe}),
            (std::vector<bool>{false, true, false, true}));
  EXPECT_FALSE(w.layers[0].attn.q_bias.empty());
  EXPECT_TRUE(w.layers[0].attn.o_bias.empty());
}

TEST(BindStructure, OlmoeAndQwen3WithAttentionBias) {
  for (const char* arch : {"olmoe", "qwen3_moe"}) {
    SCOPED_TRACE(arch);
    test::TempDir dir;
    SyntheticModelSpec spec = tiny_model_spec(arch);
    spec.qkv_bias = true;
    write_synthetic_model(spec, dir.path());
    CpuBackend backend(1);
    const auto model = Model::load(dir.path(), backend);
    for (const LayerWeights& L : model->weights().layers) {
      EXPECT_FALSE(L.attn.q_bias.empty());
      EXPECT_FALSE(L.attn.o_bias.empty());
    }
  }
}

TEST(BindStructure, TiedEmbeddingsNeedNoLmHead) {
  test::TempDir dir;
  SyntheticModelSpec spec = tiny_model_spec("qwen3_moe");
  spec.tie_word_embeddings = true;
  write_synthetic_model(spec, dir.path());
  CpuBackend backend(1);
  const auto model = Model::load(dir.path(), backend);
  EXPECT_FALSE(model->source().contains("lm_head.weight"));
  EXPECT_EQ(model->weights().lm_head.data, model->weights().embed.data);
}

// ---------------------------------------------------------------- damaged checkpoints

class DamagedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    write_synthetic_model(tiny_model_spec("mixtral"), dir_.path());
    tensors_ = test::read_all_tensors(st_path());
  }
  std::filesystem::path st_path() const { return dir_ / "model.safetensors"; }
  void rewrite() { test::write_all_tensors(st_path(), tensors_); }
  void load() {
    CpuBackend backend(1);
    Model::load(dir_.path(), backend);
  }
  StoredTensor& tensor(const std::string& name) {
    StoredTensor* t = test::find_tensor(tensors_, name);
    if (!t) throw std::runtime_error("test setup: no tensor " + name);
    return *t;
  }

  test::TempDir dir_;
  std::vector<StoredTensor> tensors_;
};

TEST_F(DamagedCheckpoint, UndamagedRewriteStillLoads) {
  rewrite();
  EXPECT_NO_THROW(load());
}

TEST_F(DamagedCheckpoint, MissingExpertWeight) {
  const std::string name = "model.layers.1.block_sparse_moe.experts.3.w2.weight";
  ASSERT_TRUE(test::erase_tensor(tensors_, name));
  rewrite();
  EXPECT_ERROR_CONTAINS(load(), {dir_.path().string(), "'" + name + "'", "missing", "[64, 128]"});
}

TEST_F(DamagedCheckpoint, MissingRouter) {
  // Neither block_sparse_moe.gate.weight nor the transformers-5 mlp.gate.weight.
  const std::string name = "model.layers.0.block_sparse_moe.gate.weight";
  ASSERT_TRUE(test::erase_tensor(tensors_, name));
  rewrite();
  EXPECT_ERROR_CONTAINS(load(), {dir_.path().string(), "gate.weight", "missing"});
}

TEST_F(DamagedCheckpoint, ConfigHiddenSizeChanged) {
  json cfg = test::read_json(dir_ / "config.json");
  cfg["hidden_size"] = 32;  // 4 heads x 8
  test::write_json(dir_ / "config.json", cfg);
  EXPECT_ERROR_CONTAINS(
      load(), {"model.safetensors", "'model.embed_tokens.weight'", "[512, 64]", "expected [512, 32]", "hidden_size"});
}

TEST_F(DamagedCheckpoint, ConfigExpertWidthChanged) {
  json cfg = test::read_json(dir_ / "config.json");
  cfg["intermediate_size"] = 96;
  test::write_json(dir_ / "config.json", cfg);
  EXPECT_ERROR_CONTAINS(load(), {"model.safetensors", "'model.layers.0.block_sparse_moe.experts.0.w1.weight'",
                                 "[128, 64]", "expected [96, 64]"});
}

TEST_F(DamagedCheckpoint, ConfigExpertCountLarger) {
  json cfg = test::read_json(dir_ / "config.json");
  cfg["num_local_experts"] = 9;
  test::write_json(dir_ / "config.json", cfg);
  EXPECT_ERROR_CONTAINS(load(), {"'model.layers.0.block_sparse_moe.gate.weight'", "[8, 64]", "expected [9, 64]"});
}

TEST_F(DamagedCheckpoint, TransposedWeight) {
  const std::string name = "model.layers.0.self_attn.k_proj.weight";
  StoredTensor& t = tensor(name);
  ASSERT_EQ(t.shape, (std::vector<int64_t>{32, 64}));
  const size_t es = static_cast<size_t>(dtype_bits(t.dtype) / 8);
  std::vector<uint8_t> out(t.bytes.size());
  for (size_t r = 0; r < 32; ++r)
    for (size_t col = 0; col < 64; ++col)
      std::memcpy(out.data() + (col * 32 + r) * es, t.bytes.data() + (r * 64 + col) * es, es);
  t.bytes = std::move(out);
  t.shape = {64, 32};
  rewrite();
  EXPECT_ERROR_CONTAINS(
      load(), {st_path().string(), "'" + name + "'", "has shape [64, 32]", "expected [32, 64]", "num_key_value_heads"});
}

TEST_F(DamagedCheckpoint, WeightStoredAsI32) {
  StoredTensor& t = tensor("model.norm.weight");
  t.dtype = DType::kI32;
  t.bytes.assign(static_cast<size_t>(64 * 4), 0);
  rewrite();
  EXPECT_ERROR_CONTAINS(load(), {st_path().string(), "'model.norm.weight'", "dtype I32", "F32, F16 and BF16"});
}

TEST_F(DamagedCheckpoint, WeightStoredAsF8E4M3) {
  const std::string name = "model.layers.1.block_sparse_moe.experts.0.w1.weight";
  StoredTensor& t = tensor(name);
  t.dtype = DType::kF8E4M3;
  t.bytes.assign(static_cast<size_t>(128 * 64), 0x38);
  rewrite();
  EXPECT_ERROR_CONTAINS(load(), {st_path().string(), "'" + name + "'", "F8_E4M3"});
}

TEST_F(DamagedCheckpoint, UntiedWithoutLmHead) {
  ASSERT_TRUE(test::erase_tensor(tensors_, "lm_head.weight"));
  rewrite();
  EXPECT_ERROR_CONTAINS(load(), {dir_.path().string(), "'lm_head.weight'", "missing"});
  // Declaring the embeddings tied makes the same checkpoint valid.
  json cfg = test::read_json(dir_ / "config.json");
  cfg["tie_word_embeddings"] = true;
  test::write_json(dir_ / "config.json", cfg);
  EXPECT_NO_THROW(load());
}

TEST_F(DamagedCheckpoint, QkvBiasDeclaredButAbsent) {
  // Mixtral never has a bias; an OLMoE checkpoint without the biases its config declares fails.
  test::TempDir olmoe;
  write_synthetic_model(tiny_model_spec("olmoe"), olmoe.path());
  json cfg = test::read_json(olmoe / "config.json");
  cfg["attention_bias"] = true;
  test::write_json(olmoe / "config.json", cfg);
  CpuBackend backend(1);
  EXPECT_ERROR_CONTAINS(Model::load(olmoe.path(), backend),
                        {olmoe.path().string(), "'model.layers.0.self_attn.q_proj.bias'", "missing"});
}

TEST(BindErrors, NoSafetensors) {
  test::TempDir dir;
  write_synthetic_model(tiny_model_spec("olmoe"), dir.path());
  std::filesystem::remove(dir / "model.safetensors");
  CpuBackend backend(1);
  EXPECT_ERROR_CONTAINS(Model::load(dir.path(), backend), {dir.path().string()});
}

// Tensor parallel: each rank binds its shard (heads, expert widths, vocabulary rows) and reads
// only those bytes of the sharded tensors; a size that does not divide is refused by name.
TEST(BindTensorParallel, EachRankBindsItsShard) {
  test::TempDir dir;
  write_synthetic_model(tiny_model_spec("mixtral"), dir.path());
  CpuBackend backend(1);
  const std::unique_ptr<Model> whole = Model::load(dir.path(), backend);
  const ModelWeights& w = whole->weights();
  for (int rank = 0; rank < 2; ++rank) {
    const ParallelLayout tp2(2, rank, 1, 0, LayerRange{0, 2}, 2);
    const std::unique_ptr<Model> part = Model::load(dir.path(), backend, &tp2);
    const ModelWeights& p = part->weights();
    const LayerWeights& L = p.layers[0];
    EXPECT_EQ(L.attn.q.dim(0), w.layers[0].attn.q.dim(0) / 2);
    EXPECT_EQ(L.attn.k.dim(0), w.layers[0].attn.k.dim(0) / 2);
    EXPECT_EQ(L.attn.o.dim(1), w.layers[0].attn.o.dim(1) / 2);
    EXPECT_EQ(L.moe.experts[3].gate.dim(0), w.layers[0].moe.experts[3].gate.dim(0) / 2);
    EXPECT_EQ(L.moe.experts[3].down.dim(1), w.layers[0].moe.experts[3].down.dim(1) / 2);
    EXPECT_EQ(p.lm_head.dim(0), w.lm_head.dim(0) / 2);
    EXPECT_EQ(L.moe.router.dim(0), w.layers[0].moe.router.dim(0));  // replicated
    // Everything but the embedding, the router and the norms is halved.
    const uint64_t replicated = w.embed.nbytes() + w.final_norm.nbytes() +
                                2 * (w.layers[0].moe.router.nbytes() + 2 * w.layers[0].attn_norm.nbytes());
    EXPECT_EQ(p.bytes, replicated + (w.bytes - replicated) / 2) << "rank " << rank;
    // Rank 1's q rows are the second half of the file's.
    EXPECT_EQ(std::memcmp(L.attn.q.row(0).data, w.layers[0].attn.q.row(rank * L.attn.q.dim(0)).data,
                          static_cast<size_t>(L.attn.q.row(0).nbytes())),
              0);
  }
  const ParallelLayout tp3(3, 0, 1, 0, LayerRange{0, 2}, 2);
  EXPECT_ERROR_CONTAINS(Model::load(dir.path(), backend, &tp3), {"tensor parallel size 3", "num_attention_heads"});
}

// ---------------------------------------------------------------- fused experts

// Rewrites a per-expert checkpoint into transformers 5's fused form: per layer
// model.layers.N.mlp.experts.gate_up_proj (E, 2I, H) with each expert's gate rows first,
// model.layers.N.mlp.experts.down_proj (E, H, I), and the router at model.layers.N.mlp.gate.weight.
void fuse_experts(std::vector<StoredTensor>& tensors, const ModelConfig& c) {
  const ArchSpec& a = *c.arch;
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    if (!c.layer_is_moe[static_cast<size_t>(layer)]) continue;
    const std::string block = str_cat("model.layers.", layer, ".", a.moe_block, ".");
    const std::string mlp = str_cat("model.layers.", layer, ".mlp.");
    StoredTensor gate_up{mlp + "experts.gate_up_proj", DType::kF32, {}, {}};
    StoredTensor down{mlp + "experts.down_proj", DType::kF32, {}, {}};
    for (int64_t e = 0; e < c.num_experts; ++e) {
      const std::string p = str_cat(block, "experts.", e, ".");
      StoredTensor* g = test::find_tensor(tensors, str_cat(p, a.expert_gate, ".weight"));
      StoredTensor* u = test::find_tensor(tensors, str_cat(p, a.expert_up, ".weight"));
      StoredTensor* d = test::find_tensor(tensors, str_cat(p, a.expert_down, ".weight"));
      ASSERT_TRUE(g && u && d) << p;
      gate_up.dtype = down.dtype = g->dtype;
      gate_up.bytes.insert(gate_up.bytes.end(), g->bytes.begin(), g->bytes.end());
      gate_up.bytes.insert(gate_up.bytes.end(), u->bytes.begin(), u->bytes.end());
      down.bytes.insert(down.bytes.end(), d->bytes.begin(), d->bytes.end());
      for (const std::string& n : {g->name, u->name, d->name}) ASSERT_TRUE(test::erase_tensor(tensors, n));
    }
    gate_up.shape = {c.num_experts, 2 * c.expert_intermediate, c.hidden_size};
    down.shape = {c.num_experts, c.hidden_size, c.expert_intermediate};
    tensors.push_back(std::move(gate_up));
    tensors.push_back(std::move(down));
    // Every other tensor of the block (router, shared expert) moves under mlp. too.
    for (StoredTensor& t : tensors)
      if (t.name.rfind(block, 0) == 0) t.name = mlp + t.name.substr(block.size());
  }
}

std::vector<float> all_logits(const Model& m, CpuBackend& backend, const std::vector<int32_t>& tokens) {
  Transformer tr(m.config(), m.weights(), m.layout(), backend, 4);
  KvCache cache(backend, m.config(), m.layout(), 32);
  std::vector<float> logits;
  tr.forward(tokens, cache, /*all_logits=*/true, logits);
  std::vector<float> step;
  const int32_t next[1] = {7};
  tr.forward(next, cache, false, step);  // one decode step with the cache too
  logits.insert(logits.end(), step.begin(), step.end());
  return logits;
}

class FusedExperts : public ::testing::TestWithParam<std::string> {};

TEST_P(FusedExperts, SameLogitsBitForBit) {
  test::TempDir per_expert, fused;
  const SyntheticModelSpec spec = tiny_model_spec(GetParam());
  write_synthetic_model(spec, per_expert.path());
  write_synthetic_model(spec, fused.path());
  const ModelConfig c = load_model_config(fused.path());
  std::vector<StoredTensor> tensors = test::read_all_tensors(fused / "model.safetensors");
  fuse_experts(tensors, c);
  if (HasFatalFailure()) return;
  test::write_all_tensors(fused / "model.safetensors", tensors);

  CpuBackend backend(1);
  const auto a = Model::load(per_expert.path(), backend);
  const auto b = Model::load(fused.path(), backend);
  EXPECT_EQ(a->weights().expert_form, ExpertForm::kPerExpert);
  EXPECT_EQ(b->weights().expert_form, ExpertForm::kFused);
  EXPECT_FALSE(b->source().contains(
      str_cat("model.layers.", c.num_layers - 1, ".mlp.experts.0.", c.arch->expert_gate, ".weight")));
  EXPECT_EQ(a->weights().bytes, b->weights().bytes);

  const std::vector<int32_t> tokens = {1, 17, 300, 42, 5, 511, 0, 99, 256};
  const std::vector<float> la = all_logits(*a, backend, tokens);
  const std::vector<float> lb = all_logits(*b, backend, tokens);
  ASSERT_EQ(la.size(), lb.size());
  ASSERT_EQ(la.size(), (tokens.size() + 1) * static_cast<size_t>(c.vocab_size));
  size_t differing = 0;
  for (size_t i = 0; i < la.size(); ++i)
    if (std::memcmp(&la[i], &lb[i], sizeof(float)) != 0) ++differing;
  EXPECT_EQ(differing, 0u) << "fused and per-expert logits must be bit-identical";
}

TEST(FusedExpertsErrors, FusedDownProjWrongShape) {
  test::TempDir dir;
  write_synthetic_model(tiny_model_spec("mixtral"), dir.path());
  const ModelConfig c = load_model_config(dir.path());
  std::vector<StoredTensor> tensors = test::read_all_tensors(dir / "model.safetensors");
  fuse_experts(tensors, c);
  if (HasFatalFailure()) return;
  StoredTensor* down = test::find_tensor(tensors, "model.layers.1.mlp.experts.down_proj");
  ASSERT_NE(down, nullptr);
  down->shape = {8, 128, 64};  // (E, I, H): transposed per expert
  test::write_all_tensors(dir / "model.safetensors", tensors);
  CpuBackend backend(1);
  EXPECT_ERROR_CONTAINS(Model::load(dir.path(), backend),
                        {"'model.layers.1.mlp.experts.down_proj'", "[8, 128, 64]", "expected [8, 64, 128]"});
}

INSTANTIATE_TEST_SUITE_P(Archs, FusedExperts, ::testing::Values("mixtral", "qwen2_moe", "olmoe"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace moe

namespace moe {
namespace {

// Router weights of every MoE layer as floats (the tiny Mixtral is bf16).
std::vector<std::vector<float>> routers(const ModelWeights& w) {
  std::vector<std::vector<float>> out;
  for (const LayerWeights& l : w.layers) {
    if (!l.is_moe) continue;
    const Tensor& r = l.moe.router;
    std::vector<float> v(static_cast<size_t>(r.numel()));
    const auto* p = static_cast<const uint16_t*>(r.data);
    for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_f32(p[i]);
    out.push_back(std::move(v));
  }
  return out;
}

double correlation(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// router_correlation c: every later router correlates with the first by about c; 0 leaves the
// model exactly as before (the same random stream: every other tensor, and the routers, equal).
TEST(SyntheticRouters, CorrelatedAcrossLayersWhenAsked) {
  SyntheticModelSpec spec = tiny_model_spec("mixtral");
  spec.num_layers = 4;
  spec.hidden_size = 256;
  spec.num_heads = 4;
  spec.num_kv_heads = 2;
  CpuBackend backend(1);
  test::TempDir d0, d8;
  write_synthetic_model(spec, d0.path());
  SyntheticModelSpec corr = spec;
  corr.router_correlation = 0.8;
  write_synthetic_model(corr, d8.path());
  const auto m0 = Model::load(d0.path(), backend);
  const auto m8 = Model::load(d8.path(), backend);
  const auto r0 = routers(m0->weights()), r8 = routers(m8->weights());
  ASSERT_EQ(r0.size(), 4u);
  EXPECT_EQ(r0[0], r8[0]) << "the first router is the same draw";
  for (size_t l = 1; l < r0.size(); ++l) {
    EXPECT_LT(std::abs(correlation(r0[0], r0[l])), 0.15) << "independent layer " << l;
    EXPECT_NEAR(correlation(r8[0], r8[l]), 0.8, 0.1) << "correlated layer " << l;
  }
  // Everything else is unchanged: e.g. an expert's weights.
  const Tensor& a = m0->weights().layers[2].moe.experts[3].up;
  const Tensor& b = m8->weights().layers[2].moe.experts[3].up;
  EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes()), 0);
}

}  // namespace
}  // namespace moe
