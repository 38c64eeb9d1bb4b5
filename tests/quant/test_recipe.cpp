// Quantization recipes: parsing, canonical specs, presets, errors; tensor classification for
// every architecture in both expert forms.
#include <gtest/gtest.h>

#include <string>

#include "runtime/io/safetensors.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/quant/recipe.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

using test::TempDir;

StorageChoice quant(QuantType t, int32_t g) {
  StorageChoice c;
  c.mode = StorageChoice::Mode::kQuant;
  c.quant = QuantFormat{t, g};
  return c;
}
StorageChoice dense(DType t) {
  StorageChoice c;
  c.mode = StorageChoice::Mode::kDense;
  c.dtype = t;
  return c;
}
const StorageChoice kKeep{};

TEST(Recipe, ParsesKindFormatPairs) {
  const QuantRecipe r = QuantRecipe::parse("attn=q4,experts=q2g16,router=f16,embed=q8,lm_head=q8");
  EXPECT_EQ(r.choice(TensorKind::kAttention), quant(QuantType::kQ4, 64));
  EXPECT_EQ(r.choice(TensorKind::kExpert), quant(QuantType::kQ2, 16));
  EXPECT_EQ(r.choice(TensorKind::kRouter), dense(DType::kF16));
  EXPECT_EQ(r.choice(TensorKind::kEmbedding), quant(QuantType::kQ8, 64));
  EXPECT_EQ(r.choice(TensorKind::kLmHead), quant(QuantType::kQ8, 64));
  EXPECT_EQ(r.choice(TensorKind::kSharedExpert), kKeep);  // not named: kept
  EXPECT_EQ(r.choice(TensorKind::kDenseMlp), kKeep);
  EXPECT_EQ(r.choice(TensorKind::kNorm), kKeep);
  EXPECT_EQ(r.choice(TensorKind::kBias), kKeep);
  EXPECT_EQ(r.spec(), "attn=q4g64,router=f16,experts=q2g16,embed=q8g64,lm_head=q8g64");
  EXPECT_EQ(QuantRecipe::parse(r.spec()), r);
}

TEST(Recipe, FormatsAndGroupSizes) {
  EXPECT_EQ(QuantRecipe::parse("attn=q4g128").choice(TensorKind::kAttention), quant(QuantType::kQ4, 128));
  EXPECT_EQ(QuantRecipe::parse("attn=q3g32").choice(TensorKind::kAttention), quant(QuantType::kQ3, 32));
  EXPECT_EQ(QuantRecipe::parse("attn=q2").choice(TensorKind::kAttention), quant(QuantType::kQ2, 16));
  EXPECT_EQ(QuantRecipe::parse("attn=q8g256").choice(TensorKind::kAttention), quant(QuantType::kQ8, 256));
  EXPECT_EQ(QuantRecipe::parse("attn=bf16").choice(TensorKind::kAttention), dense(DType::kBF16));
  EXPECT_EQ(QuantRecipe::parse("attn=f32").choice(TensorKind::kAttention), dense(DType::kF32));
  EXPECT_EQ(QuantRecipe::parse("attn=keep").choice(TensorKind::kAttention), kKeep);
  EXPECT_EQ(QuantRecipe::parse(" attn = q4 , experts = q2 ").spec(), "attn=q4g64,experts=q2g16");
}

TEST(Recipe, Presets) {
  const QuantRecipe q4 = QuantRecipe::parse("q4");
  for (const TensorKind k : {TensorKind::kAttention, TensorKind::kExpert, TensorKind::kSharedExpert,
                             TensorKind::kDenseMlp, TensorKind::kEmbedding, TensorKind::kLmHead})
    EXPECT_EQ(q4.choice(k), quant(QuantType::kQ4, 64)) << tensor_kind_name(k);
  EXPECT_EQ(q4.choice(TensorKind::kRouter), kKeep);
  EXPECT_EQ(q4, QuantRecipe::parse("all=q4"));
  EXPECT_EQ(QuantRecipe::parse("q2").choice(TensorKind::kExpert), quant(QuantType::kQ2, 16));
  EXPECT_EQ(QuantRecipe::parse("q3").choice(TensorKind::kEmbedding), quant(QuantType::kQ3, 64));
  EXPECT_EQ(QuantRecipe::parse("q8").choice(TensorKind::kLmHead), quant(QuantType::kQ8, 64));

  const QuantRecipe m42 = QuantRecipe::parse("mixed-4-2");
  EXPECT_EQ(m42.spec(), "attn=q4g64,experts=q2g16,shared=q4g64,dense=q4g64");
  EXPECT_EQ(m42.choice(TensorKind::kEmbedding), kKeep);
  EXPECT_EQ(m42.choice(TensorKind::kRouter), kKeep);
  EXPECT_EQ(QuantRecipe::parse("mixed-4-3").spec(), "attn=q4g64,experts=q3g64,shared=q4g64,dense=q4g64");

  const QuantRecipe keep = QuantRecipe::parse("keep");
  EXPECT_EQ(keep.spec(), "keep");
  EXPECT_EQ(keep, QuantRecipe::parse("all=keep"));
  EXPECT_EQ(keep.choice(TensorKind::kExpert), kKeep);
}

TEST(Recipe, LaterEntriesOverrideEarlierOnes) {
  const QuantRecipe r = QuantRecipe::parse("all=q8,experts=q2g32,embed=keep");
  EXPECT_EQ(r.choice(TensorKind::kAttention), quant(QuantType::kQ8, 64));
  EXPECT_EQ(r.choice(TensorKind::kExpert), quant(QuantType::kQ2, 32));
  EXPECT_EQ(r.choice(TensorKind::kEmbedding), kKeep);
  EXPECT_EQ(r.spec(), "attn=q8g64,experts=q2g32,shared=q8g64,dense=q8g64,lm_head=q8g64");
  // A preset as the base, refined.
  EXPECT_EQ(QuantRecipe::parse("mixed-4-2,embed=q8,router=bf16").spec(),
            "attn=q4g64,router=bf16,experts=q2g16,shared=q4g64,dense=q4g64,embed=q8g64");
}

TEST(Recipe, SpecRoundTrips) {
  for (const char* s : {"keep", "q8", "q4", "q3", "q2", "mixed-4-2", "mixed-4-3", "attn=f16,router=f32",
                        "experts=q3g128,shared=q2g32,dense=bf16", "all=q4g256,router=q8g16"}) {
    const QuantRecipe r = QuantRecipe::parse(s);
    EXPECT_EQ(QuantRecipe::parse(r.spec()), r) << s << " -> " << r.spec();
    EXPECT_EQ(QuantRecipe::parse(r.spec()).spec(), r.spec()) << s;
  }
}

TEST(Recipe, ErrorsNameThePartAndListWhatIsAccepted) {
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse("attn=q5"), {"'q5'", "q8, q4, q3, q2", "f16", "bf16", "keep"});
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse("attn=q4g7"), {"'q4g7'", "g16", "g256"});
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse("mlp=q4"), {"unknown tensor kind 'mlp'", "attn", "router", "experts",
                                                       "shared", "dense", "embed", "lm_head", "all"});
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse("norm=q4"), {"'norm'", "always kept"});
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse("q5"), {"'q5'", "preset", "mixed-4-2", "mixed-4-3", "kind=format"});
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse(""), {"empty", "mixed-4-2"});
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse("attn=q4,,experts=q2"), {"empty entry"});
  EXPECT_ERROR_CONTAINS(QuantRecipe::parse("attn="), {"unknown format ''"});
}

struct Case {
  const char* name;
  TensorKind kind;
};

void expect_kinds(const char* arch_name, std::initializer_list<Case> cases) {
  const ArchSpec* a = find_architecture(arch_name);
  ASSERT_NE(a, nullptr);
  for (const Case& c : cases) EXPECT_EQ(classify_tensor(c.name, *a), c.kind) << arch_name << ": " << c.name;
}

TEST(ClassifyTensor, Mixtral) {
  expect_kinds("MixtralForCausalLM", {{"model.embed_tokens.weight", TensorKind::kEmbedding},
                                      {"lm_head.weight", TensorKind::kLmHead},
                                      {"model.norm.weight", TensorKind::kNorm},
                                      {"model.layers.0.input_layernorm.weight", TensorKind::kNorm},
                                      {"model.layers.11.post_attention_layernorm.weight", TensorKind::kNorm},
                                      {"model.layers.3.self_attn.q_proj.weight", TensorKind::kAttention},
                                      {"model.layers.3.self_attn.k_proj.weight", TensorKind::kAttention},
                                      {"model.layers.3.self_attn.v_proj.weight", TensorKind::kAttention},
                                      {"model.layers.3.self_attn.o_proj.weight", TensorKind::kAttention},
                                      {"model.layers.3.block_sparse_moe.gate.weight", TensorKind::kRouter},
                                      {"model.layers.3.block_sparse_moe.experts.7.w1.weight", TensorKind::kExpert},
                                      {"model.layers.3.block_sparse_moe.experts.7.w2.weight", TensorKind::kExpert},
                                      {"model.layers.3.block_sparse_moe.experts.7.w3.weight", TensorKind::kExpert},
                                      // transformers 5's fused form
                                      {"model.layers.1.mlp.gate.weight", TensorKind::kRouter},
                                      {"model.layers.1.mlp.experts.gate_up_proj", TensorKind::kExpert},
                                      {"model.layers.1.mlp.experts.down_proj", TensorKind::kExpert}});
}

TEST(ClassifyTensor, Qwen2Moe) {
  expect_kinds("Qwen2MoeForCausalLM", {{"model.layers.0.self_attn.q_proj.bias", TensorKind::kBias},
                                       {"model.layers.0.self_attn.k_proj.bias", TensorKind::kBias},
                                       {"model.layers.0.self_attn.v_proj.bias", TensorKind::kBias},
                                       {"model.layers.0.self_attn.q_proj.weight", TensorKind::kAttention},
                                       {"model.layers.0.mlp.gate_proj.weight", TensorKind::kDenseMlp},
                                       {"model.layers.0.mlp.up_proj.weight", TensorKind::kDenseMlp},
                                       {"model.layers.0.mlp.down_proj.weight", TensorKind::kDenseMlp},
                                       {"model.layers.1.mlp.gate.weight", TensorKind::kRouter},
                                       {"model.layers.1.mlp.experts.59.gate_proj.weight", TensorKind::kExpert},
                                       {"model.layers.1.mlp.experts.59.up_proj.weight", TensorKind::kExpert},
                                       {"model.layers.1.mlp.experts.59.down_proj.weight", TensorKind::kExpert},
                                       {"model.layers.1.mlp.experts.gate_up_proj", TensorKind::kExpert},
                                       {"model.layers.1.mlp.experts.down_proj", TensorKind::kExpert},
                                       {"model.layers.1.mlp.shared_expert.gate_proj.weight", TensorKind::kSharedExpert},
                                       {"model.layers.1.mlp.shared_expert.up_proj.weight", TensorKind::kSharedExpert},
                                       {"model.layers.1.mlp.shared_expert.down_proj.weight", TensorKind::kSharedExpert},
                                       {"model.layers.1.mlp.shared_expert_gate.weight", TensorKind::kSharedExpert}});
}

TEST(ClassifyTensor, Qwen3MoeAndOlmoe) {
  for (const char* arch : {"Qwen3MoeForCausalLM", "OlmoeForCausalLM"}) {
    expect_kinds(arch, {{"model.layers.2.self_attn.q_norm.weight", TensorKind::kNorm},
                        {"model.layers.2.self_attn.k_norm.weight", TensorKind::kNorm},
                        {"model.layers.2.self_attn.o_proj.bias", TensorKind::kBias},
                        {"model.layers.2.self_attn.o_proj.weight", TensorKind::kAttention},
                        {"model.layers.2.mlp.gate.weight", TensorKind::kRouter},
                        {"model.layers.2.mlp.experts.0.gate_proj.weight", TensorKind::kExpert},
                        {"model.layers.2.mlp.experts.0.down_proj.weight", TensorKind::kExpert},
                        {"model.layers.2.mlp.experts.gate_up_proj", TensorKind::kExpert},
                        {"model.embed_tokens.weight", TensorKind::kEmbedding},
                        {"lm_head.weight", TensorKind::kLmHead}});
  }
}

TEST(ClassifyTensor, UnknownNamesThrowListingTheAcceptedOnes) {
  const ArchSpec& mixtral = *find_architecture("MixtralForCausalLM");
  EXPECT_ERROR_CONTAINS(classify_tensor("model.layers.0.foo.weight", mixtral),
                        {"'model.layers.0.foo.weight'", "MixtralForCausalLM", "block_sparse_moe.gate.weight",
                         "experts.E.{w1,w3,w2}.weight", "gate_up_proj"});
  // Another architecture's expert names.
  EXPECT_ERROR_CONTAINS(classify_tensor("model.layers.0.block_sparse_moe.experts.0.gate_proj.weight", mixtral),
                        {"gate_proj"});
  EXPECT_ERROR_CONTAINS(classify_tensor("model.rotary_emb.inv_freq", mixtral), {"inv_freq"});
}

TEST(ClassifyTensor, EveryTensorOfEverySyntheticModel) {
  for (const char* arch : {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"}) {
    TempDir dir;
    SyntheticModelSpec spec = tiny_model_spec(arch);
    spec.qkv_bias = true;
    write_synthetic_model(spec, dir.path());
    const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(dir.path());
    const ArchSpec& a = *find_architecture(spec.architecture);
    std::map<TensorKind, int> seen;
    for (const std::string& name : ckpt.tensor_names()) {
      TensorKind k{};
      ASSERT_NO_THROW(k = classify_tensor(name, a)) << arch << ": " << name;
      ++seen[k];
      if (name.find(".experts.") != std::string::npos) {
        EXPECT_EQ(k, TensorKind::kExpert) << name;
      }
      if (name.ends_with(".bias")) {
        EXPECT_EQ(k, TensorKind::kBias) << name;
      }
      if (name.ends_with("norm.weight")) {
        EXPECT_EQ(k, TensorKind::kNorm) << name;
      }
    }
    EXPECT_GT(seen[TensorKind::kExpert], 0) << arch;
    EXPECT_GT(seen[TensorKind::kRouter], 0) << arch;
    EXPECT_GT(seen[TensorKind::kAttention], 0) << arch;
    if (!a.qkv_bias_key.empty()) {
      EXPECT_GT(seen[TensorKind::kBias], 0) << arch;
    }
    if (a.shared_expert) {
      EXPECT_EQ(seen[TensorKind::kSharedExpert], 4 * spec.num_layers / 2) << arch;  // sparse every 2nd layer
      EXPECT_GT(seen[TensorKind::kDenseMlp], 0) << arch;
    }
  }
}

}  // namespace
}  // namespace moe
