// config.json parsing: per-architecture fields, head_dim / rope / layer kinds / sliding
// windows / EOS resolution, and every error path (each error names the file, the key and the
// problem).
#include <gtest/gtest.h>

#include "runtime/model/config.h"
#include "tests/model/model_test_util.h"

namespace moe {
namespace {

using test::base_config;
using test::fake_source;
using test::json;

ModelConfig parse(const json& j) {
  return parse_model_config(j.dump(), fake_source());
}

std::vector<bool> moe_layers(const ModelConfig& c) {
  return c.layer_is_moe;
}

// ---------------------------------------------------------------- per architecture

TEST(ConfigArch, MixtralFields) {
  json j = base_config("mixtral");
  j["norm_topk_prob"] = false;  // ignored: Mixtral always renormalises
  const ModelConfig c = parse(j);
  ASSERT_NE(c.arch, nullptr);
  EXPECT_EQ(c.arch->hf_name, "MixtralForCausalLM");
  EXPECT_EQ(c.source, fake_source());
  EXPECT_EQ(c.vocab_size, 100);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.q_width(), 64);
  EXPECT_EQ(c.kv_width(), 32);
  EXPECT_EQ(c.max_position_embeddings, 256);
  EXPECT_EQ(c.num_experts, 4);
  EXPECT_EQ(c.experts_per_token, 2);
  EXPECT_EQ(c.expert_intermediate, 96);  // Mixtral's expert width is intermediate_size
  EXPECT_EQ(c.dense_intermediate, 0);
  EXPECT_EQ(c.shared_intermediate, 0);
  EXPECT_TRUE(c.renormalize_topk);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.clip_qkv.has_value());
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 1e6f);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(moe_layers(c), (std::vector<bool>{true, true}));
  EXPECT_EQ(c.layer_window, (std::vector<int64_t>{0, 0}));
  EXPECT_FALSE(c.has_dense_layers());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_NE(c.summary().find("MixtralForCausalLM"), std::string::npos);
}

TEST(ConfigArch, MixtralIgnoresNormTopkProbTrueToo) {
  json j = base_config("mixtral");
  j["norm_topk_prob"] = true;
  EXPECT_TRUE(parse(j).renormalize_topk);
}

TEST(ConfigArch, Qwen2MoeFields) {
  const ModelConfig c = parse(base_config("qwen2_moe"));
  EXPECT_EQ(c.arch->hf_name, "Qwen2MoeForCausalLM");
  EXPECT_EQ(c.num_experts, 4);
  EXPECT_EQ(c.expert_intermediate, 32);  // moe_intermediate_size
  EXPECT_EQ(c.shared_intermediate, 48);
  EXPECT_EQ(c.dense_intermediate, 0);  // every layer is MoE with decoder_sparse_step 1
  EXPECT_TRUE(c.qkv_bias);             // qkv_bias absent: defaults to true
  EXPECT_FALSE(c.o_bias);              // never on o_proj
  EXPECT_FALSE(c.renormalize_topk);    // norm_topk_prob absent: false
  EXPECT_FLOAT_EQ(c.rope_theta, 1e4f);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_EQ(moe_layers(c), (std::vector<bool>{true, true}));
}

TEST(ConfigArch, Qwen2MoeExplicitFlags) {
  json j = base_config("qwen2_moe");
  j["qkv_bias"] = false;
  j["norm_topk_prob"] = true;
  const ModelConfig c = parse(j);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.renormalize_topk);
}

TEST(ConfigArch, Qwen3MoeFields) {
  json j = base_config("qwen3_moe");
  j["head_dim"] = 32;  // Qwen3 sets head_dim independently of hidden_size / heads
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.arch->hf_name, "Qwen3MoeForCausalLM");
  EXPECT_EQ(c.num_experts, 4);
  EXPECT_EQ(c.expert_intermediate, 32);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.q_width(), 128);
  EXPECT_EQ(c.kv_width(), 64);
  EXPECT_EQ(c.shared_intermediate, 0);
  EXPECT_FALSE(c.qkv_bias);  // attention_bias absent: false
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.renormalize_topk);
  EXPECT_FLOAT_EQ(c.rope_theta, 1e4f);
}

TEST(ConfigArch, Qwen3MoeAttentionBiasAlsoBiasesOProj) {
  json j = base_config("qwen3_moe");
  j["attention_bias"] = true;
  j["norm_topk_prob"] = true;
  const ModelConfig c = parse(j);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.renormalize_topk);
}

TEST(ConfigArch, Qwen3MoeExpertCountFromEitherKey) {
  json only_local = base_config("qwen3_moe");
  only_local.erase("num_experts");
  only_local["num_local_experts"] = 6;
  EXPECT_EQ(parse(only_local).num_experts, 6);

  json both = base_config("qwen3_moe");
  both["num_experts"] = 6;
  both["num_local_experts"] = 6;
  EXPECT_EQ(parse(both).num_experts, 6);

  json only_main = base_config("qwen3_moe");
  only_main["num_experts"] = 5;
  EXPECT_EQ(parse(only_main).num_experts, 5);
}

TEST(ConfigArch, OlmoeFields) {
  json j = base_config("olmoe");
  j["clip_qkv"] = 8.0;
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.arch->hf_name, "OlmoeForCausalLM");
  EXPECT_EQ(c.num_experts, 4);
  EXPECT_EQ(c.expert_intermediate, 32);  // intermediate_size is the expert width
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.renormalize_topk);
  ASSERT_TRUE(c.clip_qkv.has_value());
  EXPECT_FLOAT_EQ(*c.clip_qkv, 8.0f);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 1e4f);
  EXPECT_EQ(c.layer_window, (std::vector<int64_t>{0, 0}));
}

TEST(ConfigArch, OlmoeAttentionBiasAndNormTopk) {
  json j = base_config("olmoe");
  j["attention_bias"] = true;
  j["norm_topk_prob"] = true;
  j["clip_qkv"] = nullptr;
  const ModelConfig c = parse(j);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.renormalize_topk);
  EXPECT_FALSE(c.clip_qkv.has_value());
}

TEST(ConfigArch, ArchitectureFromModelTypeAlone) {
  for (const char* arch : {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"}) {
    json j = base_config(arch);
    const std::string hf = j["architectures"][0].get<std::string>();
    j.erase("architectures");
    EXPECT_EQ(parse(j).arch->hf_name, hf) << arch;
  }
}

TEST(ConfigArch, ArchitecturesWithoutModelType) {
  json j = base_config("olmoe");
  j.erase("model_type");
  EXPECT_EQ(parse(j).arch->hf_name, "OlmoeForCausalLM");
}

// ---------------------------------------------------------------- head_dim and rope

TEST(ConfigHeadDim, ExplicitNullAbsent) {
  json j = base_config("mixtral");
  j["head_dim"] = 32;
  EXPECT_EQ(parse(j).head_dim, 32);
  EXPECT_EQ(parse(j).q_width(), 128);
  j["head_dim"] = nullptr;
  EXPECT_EQ(parse(j).head_dim, 16);
  j.erase("head_dim");
  EXPECT_EQ(parse(j).head_dim, 16);
}

TEST(ConfigRope, FromRopeParameters) {
  json j = base_config("qwen3_moe");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  EXPECT_FLOAT_EQ(parse(j).rope_theta, 5e5f);
}

TEST(ConfigRope, RopeParametersWinOverTopLevel) {
  json j = base_config("qwen3_moe");
  j["rope_theta"] = 20000.0;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  EXPECT_FLOAT_EQ(parse(j).rope_theta, 5e5f);
}

TEST(ConfigRope, FromTopLevelRopeTheta) {
  json j = base_config("mixtral");
  j["rope_theta"] = 20000.0;
  EXPECT_FLOAT_EQ(parse(j).rope_theta, 2e4f);
  j["rope_theta"] = 30000;  // an integer is a number too
  EXPECT_FLOAT_EQ(parse(j).rope_theta, 3e4f);
}

TEST(ConfigRope, RopeScalingNullKeepsTopLevel) {
  json j = base_config("qwen2_moe");
  j["rope_theta"] = 20000.0;
  j["rope_scaling"] = nullptr;
  EXPECT_FLOAT_EQ(parse(j).rope_theta, 2e4f);
}

TEST(ConfigRope, RopeParametersWithoutThetaKeepsDefault) {
  json j = base_config("mixtral");
  j["rope_parameters"] = {{"rope_type", "default"}};
  EXPECT_FLOAT_EQ(parse(j).rope_theta, 1e6f);
}

TEST(ConfigRope, DefaultPerArchitecture) {
  EXPECT_FLOAT_EQ(parse(base_config("mixtral")).rope_theta, 1e6f);
  EXPECT_FLOAT_EQ(parse(base_config("qwen2_moe")).rope_theta, 1e4f);
  EXPECT_FLOAT_EQ(parse(base_config("qwen3_moe")).rope_theta, 1e4f);
  EXPECT_FLOAT_EQ(parse(base_config("olmoe")).rope_theta, 1e4f);
}

TEST(ConfigRope, YarnIsRejected) {
  json j = base_config("qwen3_moe");
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1e6}, {"factor", 4.0}};
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "rope_parameters", "yarn", "not supported"});

  json old = base_config("mixtral");
  old["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  EXPECT_ERROR_CONTAINS(parse(old), {"config.json", "rope_scaling", "yarn", "not supported"});
}

TEST(ConfigRope, BadValues) {
  json j = base_config("mixtral");
  j["rope_theta"] = -1.0;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "rope_theta", "positive"});
  j["rope_theta"] = "big";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "rope_theta", "must be a number"});
  json p = base_config("mixtral");
  p["rope_parameters"] = "default";
  EXPECT_ERROR_CONTAINS(parse(p), {"config.json", "rope_parameters", "must be an object"});
  json partial = base_config("mixtral");
  partial["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}};
  EXPECT_ERROR_CONTAINS(parse(partial), {"config.json", "partial_rotary_factor"});
}

// ---------------------------------------------------------------- layer kinds

TEST(ConfigLayers, DecoderSparseStep) {
  json j = base_config("qwen2_moe");
  j["num_hidden_layers"] = 4;
  j["decoder_sparse_step"] = 2;
  const ModelConfig c = parse(j);
  EXPECT_EQ(moe_layers(c), (std::vector<bool>{false, true, false, true}));
  EXPECT_TRUE(c.has_dense_layers());
  EXPECT_EQ(c.dense_intermediate, 96);
}

TEST(ConfigLayers, MlpOnlyLayersExclude) {
  json j = base_config("qwen3_moe");
  j["num_hidden_layers"] = 4;
  j["mlp_only_layers"] = {0, 2};
  j["intermediate_size"] = 80;
  const ModelConfig c = parse(j);
  EXPECT_EQ(moe_layers(c), (std::vector<bool>{false, true, false, true}));
  EXPECT_EQ(c.dense_intermediate, 80);

  json k = base_config("qwen2_moe");
  k["num_hidden_layers"] = 4;
  k["decoder_sparse_step"] = 2;
  k["mlp_only_layers"] = {3};
  EXPECT_EQ(moe_layers(parse(k)), (std::vector<bool>{false, true, false, false}));
}

TEST(ConfigLayers, EmptyMlpOnlyLayersAndNull) {
  json j = base_config("qwen3_moe");
  j["mlp_only_layers"] = json::array();
  EXPECT_EQ(moe_layers(parse(j)), (std::vector<bool>{true, true}));
  j["mlp_only_layers"] = nullptr;
  EXPECT_EQ(moe_layers(parse(j)), (std::vector<bool>{true, true}));
}

TEST(ConfigLayers, MlpOnlyLayersOutOfRange) {
  json j = base_config("qwen2_moe");
  j["num_hidden_layers"] = 4;
  j["mlp_only_layers"] = {1, 4};
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "mlp_only_layers", "4", "num_hidden_layers"});
  j["mlp_only_layers"] = {-1};
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "mlp_only_layers", "-1"});
}

TEST(ConfigLayers, BadDecoderSparseStep) {
  json j = base_config("qwen2_moe");
  j["decoder_sparse_step"] = 0;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "decoder_sparse_step", "0"});
}

TEST(ConfigLayers, MixtralAndOlmoeIgnoreQwenKeys) {
  for (const char* arch : {"mixtral", "olmoe"}) {
    json j = base_config(arch);
    j["decoder_sparse_step"] = 2;
    j["mlp_only_layers"] = {0};
    EXPECT_EQ(moe_layers(parse(j)), (std::vector<bool>{true, true})) << arch;
  }
}

// ---------------------------------------------------------------- sliding windows

TEST(ConfigWindow, Mixtral) {
  json j = base_config("mixtral");
  j["num_hidden_layers"] = 3;
  j["sliding_window"] = 6;
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{6, 6, 6}));
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{0, 0, 0}));
  j.erase("sliding_window");
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{0, 0, 0}));
  j["sliding_window"] = -2;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "sliding_window", "-2"});
}

TEST(ConfigWindow, Qwen3UseFlag) {
  json j = base_config("qwen3_moe");
  j["num_hidden_layers"] = 3;
  j["sliding_window"] = 4096;
  j["use_sliding_window"] = false;
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{0, 0, 0}));
  j.erase("use_sliding_window");
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{0, 0, 0}));
  j["use_sliding_window"] = true;
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{4096, 4096, 4096}));
  j["use_sliding_window"] = "yes";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "use_sliding_window", "true or false"});
}

TEST(ConfigWindow, Qwen2LayerTypes) {
  json j = base_config("qwen2_moe");
  j["num_hidden_layers"] = 4;
  j["sliding_window"] = 16;
  j["use_sliding_window"] = true;
  j["layer_types"] = {"full_attention", "sliding_attention", "sliding_attention", "full_attention"};
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{0, 16, 16, 0}));
  j["use_sliding_window"] = false;
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{0, 0, 0, 0}));
}

TEST(ConfigWindow, Qwen2DefaultRule) {
  json j = base_config("qwen2_moe");
  j["num_hidden_layers"] = 6;
  j["sliding_window"] = 16;
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 3;
  // (i + 1) % 2 != 0 && i < max_window_layers: layers 0 and 2.
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{16, 0, 16, 0, 0, 0}));
  j.erase("max_window_layers");  // default 28: every even layer
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{16, 0, 16, 0, 16, 0}));
  j["use_sliding_window"] = false;
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>(6, 0)));
}

TEST(ConfigWindow, Qwen2BadLayerTypes) {
  json j = base_config("qwen2_moe");
  j["num_hidden_layers"] = 2;
  j["sliding_window"] = 16;
  j["use_sliding_window"] = true;
  j["layer_types"] = {"full_attention"};
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "layer_types", "one entry per layer"});
  j["layer_types"] = {"full_attention", "chunked_attention"};
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "layer_types[1]", "chunked_attention"});
}

TEST(ConfigWindow, OlmoeNever) {
  json j = base_config("olmoe");
  j["sliding_window"] = 8;
  j["use_sliding_window"] = true;
  EXPECT_EQ(parse(j).layer_window, (std::vector<int64_t>{0, 0}));
}

// ---------------------------------------------------------------- bos / eos

TEST(ConfigEos, IntListNull) {
  json j = base_config("mixtral");
  j["eos_token_id"] = 2;
  j["bos_token_id"] = 1;
  ModelConfig c = parse(j);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2}));
  ASSERT_TRUE(c.bos_token_id.has_value());
  EXPECT_EQ(*c.bos_token_id, 1);

  j["eos_token_id"] = {2, 5, 2};
  EXPECT_EQ(parse(j).eos_token_ids, (std::vector<int32_t>{2, 5}));

  j["eos_token_id"] = nullptr;
  j["bos_token_id"] = nullptr;
  c = parse(j);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_FALSE(c.bos_token_id.has_value());

  j["eos_token_id"] = "2";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "eos_token_id", "integer"});
}

TEST(ConfigEos, GenerationConfigUnion) {
  test::TempDir dir;
  json j = base_config("qwen3_moe");
  j["eos_token_id"] = {2, 5};
  test::write_json(dir / "config.json", j);
  test::write_json(dir / "generation_config.json", json{{"eos_token_id", {5, 7, 2, 9}}, {"bos_token_id", 1}});
  const ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2, 5, 7, 9}));
  EXPECT_EQ(c.source, dir / "config.json");
}

TEST(ConfigEos, GenerationConfigOnly) {
  test::TempDir dir;
  test::write_json(dir / "config.json", base_config("olmoe"));
  test::write_json(dir / "generation_config.json", json{{"eos_token_id", 3}});
  EXPECT_EQ(load_model_config(dir.path()).eos_token_ids, (std::vector<int32_t>{3}));
}

TEST(ConfigEos, NoGenerationConfig) {
  test::TempDir dir;
  json j = base_config("olmoe");
  j["eos_token_id"] = 4;
  test::write_json(dir / "config.json", j);
  EXPECT_EQ(load_model_config(dir.path()).eos_token_ids, (std::vector<int32_t>{4}));
}

TEST(ConfigEos, InvalidGenerationConfigJson) {
  test::TempDir dir;
  test::write_json(dir / "config.json", base_config("olmoe"));
  test::write_text(dir / "generation_config.json", "{\"eos_token_id\": [1,");
  EXPECT_ERROR_CONTAINS(load_model_config(dir.path()), {"generation_config.json", "invalid JSON"});
}

// transformers accepts a config whose eos_token_id lies outside the vocabulary (such a token is
// never generated); so do we: the id is dropped, with a warning naming the file, key and id.
TEST(ConfigEos, OutsideVocabIsIgnoredWithAWarning) {
  json j = base_config("mixtral");
  j["eos_token_id"] = 100;  // vocab_size 100
  ModelConfig c = parse(j);
  EXPECT_TRUE(c.eos_token_ids.empty());
  ASSERT_EQ(c.warnings.size(), 1u);
  for (const char* part : {"config.json", "eos_token_id 100", "outside the vocabulary [0, 100)", "ignored"})
    EXPECT_NE(c.warnings[0].find(part), std::string::npos) << c.warnings[0];
  j["eos_token_id"] = {2, -1, 7};
  c = parse(j);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2, 7}));
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("eos_token_id -1"), std::string::npos) << c.warnings[0];
  j["bos_token_id"] = 1000;
  c = parse(j);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_EQ(c.warnings.size(), 2u);
  // A value that is not an integer stays an error.
  j["eos_token_id"] = "2";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "eos_token_id"});
}

TEST(ConfigEos, GenerationConfigOutsideVocab) {
  test::TempDir dir;
  test::write_json(dir / "config.json", base_config("mixtral"));
  test::write_json(dir / "generation_config.json", json{{"eos_token_id", {2, 100}}});
  const ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2}));
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("generation_config.json: eos_token_id 100"), std::string::npos) << c.warnings[0];
}

// An id that only fits after truncation to 32 bits must not pass as an in-vocabulary id.
TEST(ConfigEos, HugeIdIsOutsideVocab) {
  json j = base_config("mixtral");
  j["eos_token_id"] = 4294967298LL;  // 2^32 + 2
  const ModelConfig c = parse(j);
  EXPECT_TRUE(c.eos_token_ids.empty());
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("4294967298"), std::string::npos) << c.warnings[0];
}

// ---------------------------------------------------------------- file-level errors

TEST(ConfigErrors, MissingFile) {
  test::TempDir dir;
  EXPECT_ERROR_CONTAINS(load_model_config(dir.path()), {(dir / "config.json").string(), "not found"});
}

TEST(ConfigErrors, InvalidJson) {
  EXPECT_ERROR_CONTAINS(parse_model_config("{\"vocab_size\": 10,", fake_source()),
                        {fake_source().string(), "invalid JSON"});
  test::TempDir dir;
  test::write_text(dir / "config.json", "not json at all");
  EXPECT_ERROR_CONTAINS(load_model_config(dir.path()), {(dir / "config.json").string(), "invalid JSON"});
}

TEST(ConfigErrors, NotAnObject) {
  EXPECT_ERROR_CONTAINS(parse_model_config("[1, 2, 3]", fake_source()),
                        {fake_source().string(), "must be a JSON object"});
  EXPECT_ERROR_CONTAINS(parse_model_config("42", fake_source()), {fake_source().string(), "JSON object"});
}

TEST(ConfigErrors, UnknownArchitectureListsSupported) {
  json j = base_config("mixtral");
  j["architectures"] = {"LlamaForCausalLM"};
  j.erase("model_type");
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "unknown architecture", "LlamaForCausalLM", "MixtralForCausalLM",
                                   "Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM", "OlmoeForCausalLM"});
}

TEST(ConfigErrors, BadArchitecturesValue) {
  json j = base_config("mixtral");
  j["architectures"] = json::array();
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "architectures", "non-empty list"});
  j["architectures"] = "MixtralForCausalLM";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "architectures", "non-empty list"});
}

TEST(ConfigErrors, NoArchitecturesAndUnknownModelType) {
  json j = base_config("mixtral");
  j.erase("architectures");
  j["model_type"] = "llama";
  EXPECT_ERROR_CONTAINS(
      parse(j), {"config.json", "architectures", "model_type", "llama", "MixtralForCausalLM", "OlmoeForCausalLM"});
  j.erase("model_type");
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "architectures", "model_type"});
}

TEST(ConfigErrors, ArchitecturesContradictModelType) {
  json j = base_config("mixtral");
  j["model_type"] = "qwen2_moe";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "contradictory", "MixtralForCausalLM", "qwen2_moe", "mixtral"});
}

// ---------------------------------------------------------------- missing keys

struct MissingKeyCase {
  const char* arch;
  const char* key;
};

class ConfigMissingKey : public ::testing::TestWithParam<MissingKeyCase> {};

TEST_P(ConfigMissingKey, NamesFileKeyAndProblem) {
  json j = base_config(GetParam().arch);
  ASSERT_TRUE(j.contains(GetParam().key));
  j.erase(GetParam().key);
  EXPECT_ERROR_CONTAINS(parse(j), {fake_source().string(), std::string("'") + GetParam().key + "'", "missing"});
  // null counts as missing too
  j[GetParam().key] = nullptr;
  EXPECT_ERROR_CONTAINS(parse(j), {fake_source().string(), std::string("'") + GetParam().key + "'", "missing"});
}

INSTANTIATE_TEST_SUITE_P(
    Keys, ConfigMissingKey,
    ::testing::Values(MissingKeyCase{"mixtral", "vocab_size"}, MissingKeyCase{"mixtral", "hidden_size"},
                      MissingKeyCase{"mixtral", "num_hidden_layers"}, MissingKeyCase{"mixtral", "num_attention_heads"},
                      MissingKeyCase{"mixtral", "num_experts_per_tok"}, MissingKeyCase{"mixtral", "num_local_experts"},
                      MissingKeyCase{"mixtral", "intermediate_size"}, MissingKeyCase{"qwen2_moe", "num_experts"},
                      MissingKeyCase{"qwen2_moe", "moe_intermediate_size"},
                      MissingKeyCase{"qwen2_moe", "shared_expert_intermediate_size"},
                      MissingKeyCase{"qwen3_moe", "num_experts"}, MissingKeyCase{"qwen3_moe", "moe_intermediate_size"},
                      MissingKeyCase{"olmoe", "num_experts"}, MissingKeyCase{"olmoe", "intermediate_size"},
                      MissingKeyCase{"olmoe", "vocab_size"}, MissingKeyCase{"qwen3_moe", "num_experts_per_tok"}),
    [](const auto& p) { return std::string(p.param.arch) + "_" + p.param.key; });

TEST(ConfigErrors, IntermediateSizeRequiredOnlyWithDenseLayers) {
  json j = base_config("qwen2_moe");
  j.erase("intermediate_size");
  EXPECT_EQ(parse(j).dense_intermediate, 0);  // all layers MoE: not needed
  j["num_hidden_layers"] = 4;
  j["decoder_sparse_step"] = 2;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "'intermediate_size'", "missing"});

  json q3 = base_config("qwen3_moe");
  q3["mlp_only_layers"] = {1};
  EXPECT_ERROR_CONTAINS(parse(q3), {"config.json", "'intermediate_size'", "missing"});
}

TEST(ConfigErrors, Qwen3MissingBothExpertCountKeys) {
  json j = base_config("qwen3_moe");
  j.erase("num_experts");
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_experts", "missing"});
}

// ---------------------------------------------------------------- wrong types and values

TEST(ConfigErrors, WrongTypes) {
  json j = base_config("mixtral");
  j["hidden_size"] = "64";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "hidden_size", "must be an integer", "\"64\""});
  j = base_config("mixtral");
  j["num_experts_per_tok"] = 2.5;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_experts_per_tok", "must be an integer", "2.5"});
  j = base_config("mixtral");
  j["num_local_experts"] = {4};
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_local_experts", "must be an integer"});
  j = base_config("mixtral");
  j["tie_word_embeddings"] = 1;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "tie_word_embeddings", "true or false"});
  j = base_config("mixtral");
  j["rms_norm_eps"] = "1e-5";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "rms_norm_eps", "must be a number"});
  j = base_config("qwen2_moe");
  j["qkv_bias"] = "true";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "qkv_bias", "true or false"});
  j = base_config("mixtral");
  j["hidden_act"] = 3;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "hidden_act", "must be a string"});
  j = base_config("qwen2_moe");
  j["mlp_only_layers"] = {"0"};
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "mlp_only_layers", "list of integers"});
}

TEST(ConfigErrors, HeadsNotDivisibleByKvHeads) {
  json j = base_config("mixtral");
  j["num_key_value_heads"] = 3;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_attention_heads", "num_key_value_heads", "4", "3", "multiple"});
}

TEST(ConfigErrors, TopKAboveExperts) {
  json j = base_config("mixtral");
  j["num_experts_per_tok"] = 5;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_experts_per_tok", "num_local_experts", "5", "4"});
  j = base_config("olmoe");
  j["num_experts_per_tok"] = 9;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_experts_per_tok", "num_experts", "9"});
}

TEST(ConfigErrors, OddHeadDim) {
  json j = base_config("qwen3_moe");
  j["head_dim"] = 15;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "head_dim", "15", "even"});
  j = base_config("mixtral");
  j["hidden_size"] = 36;  // 36 / 4 = 9
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "head_dim", "9", "even"});
}

TEST(ConfigErrors, HiddenNotDivisibleByHeadsWithoutHeadDim) {
  json j = base_config("mixtral");
  j["hidden_size"] = 66;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "hidden_size", "66", "num_attention_heads", "head_dim"});
  j["head_dim"] = 16;  // with an explicit head_dim it is fine
  EXPECT_EQ(parse(j).head_dim, 16);
}

TEST(ConfigErrors, UnsupportedActivation) {
  json j = base_config("olmoe");
  j["hidden_act"] = "gelu";
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "hidden_act", "gelu", "not supported"});
}

TEST(ConfigErrors, Qwen3ExpertCountKeysDisagree) {
  json j = base_config("qwen3_moe");
  j["num_experts"] = 4;
  j["num_local_experts"] = 8;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "contradictory", "num_experts", "num_local_experts", "4", "8"});
}

// Qwen3-MoE configs written by transformers 5 carry only num_local_experts: errors about the
// expert count must name the key the file actually has.
TEST(ConfigErrors, Qwen3ErrorsNameTheExpertCountKeyPresent) {
  json j = base_config("qwen3_moe");
  j.erase("num_experts");
  j["num_local_experts"] = 0;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_local_experts", "positive", "0"});
  j["num_local_experts"] = 1;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "num_experts_per_tok", "num_local_experts", "2", "1"});
}

struct BadSizeCase {
  const char* arch;
  const char* key;
  int value;
};

class ConfigNonPositive : public ::testing::TestWithParam<BadSizeCase> {};

TEST_P(ConfigNonPositive, NamesKeyAndValue) {
  json j = base_config(GetParam().arch);
  j[GetParam().key] = GetParam().value;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", GetParam().key, "positive", std::to_string(GetParam().value)});
}

INSTANTIATE_TEST_SUITE_P(
    Keys, ConfigNonPositive,
    ::testing::Values(BadSizeCase{"mixtral", "vocab_size", 0}, BadSizeCase{"mixtral", "hidden_size", -64},
                      BadSizeCase{"mixtral", "num_hidden_layers", 0}, BadSizeCase{"mixtral", "num_attention_heads", -4},
                      BadSizeCase{"mixtral", "num_key_value_heads", 0}, BadSizeCase{"mixtral", "num_local_experts", 0},
                      BadSizeCase{"mixtral", "num_experts_per_tok", 0}, BadSizeCase{"mixtral", "intermediate_size", -1},
                      BadSizeCase{"qwen2_moe", "moe_intermediate_size", 0},
                      BadSizeCase{"qwen2_moe", "shared_expert_intermediate_size", -8},
                      BadSizeCase{"qwen3_moe", "head_dim", 0}, BadSizeCase{"olmoe", "num_experts", -2}),
    [](const auto& p) {
      return std::string(p.param.arch) + "_" + p.param.key + (p.param.value < 0 ? "_neg" : "_zero");
    });

TEST(ConfigErrors, NonPositiveDenseIntermediate) {
  json j = base_config("qwen2_moe");
  j["decoder_sparse_step"] = 2;
  j["intermediate_size"] = 0;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "intermediate_size", "positive", "0"});
}

TEST(ConfigErrors, OtherNonPositiveValues) {
  json j = base_config("mixtral");
  j["rms_norm_eps"] = 0.0;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "rms_norm_eps", "positive"});
  j = base_config("olmoe");
  j["clip_qkv"] = -1.0;
  EXPECT_ERROR_CONTAINS(parse(j), {"config.json", "clip_qkv", "positive"});
}

}  // namespace
}  // namespace moe
