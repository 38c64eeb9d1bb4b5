// GGUF files as models, against transformers (fixtures: tests/golden/make_gguf_golden.py, which
// writes the golden checkpoints as llama.cpp's converter does, and a K-quant Qwen3-MoE):
//   * F32: the golden fixture's own transformers logits and greedy tokens, at the golden test's
//     tolerance (2e-4): the same f32 weights, so only summation order differs. This checks the
//     metadata -> config mapping, the tensor names, the stacked experts and, for Mixtral (arch
//     `llama`), undoing the q/k row permutation, which would move logits by units if wrong.
//   * F16 and Q8_0: transformers run on the weights the file decodes to (dequantized by gguf-py).
//   * kquant_qwen3moe: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS weights; the oracle is
//     transformers' own GGUF loader on the same file.
//   * The config read from each file equals the golden checkpoint's config.json.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/cpu/qlinear_isa.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/engine/generator.h"
#include "runtime/io/npy.h"
#include "runtime/model/gguf_source.h"
#include "runtime/model/model.h"
#include "tests/io/gguf_builder.h"

namespace moe {
namespace {

namespace fs = std::filesystem;

fs::path data(const std::string& rel) {
  return fs::path(MOE_TEST_DATA_DIR) / rel;
}

float max_abs_diff(const float* a, const float* b, size_t n, size_t* where = nullptr) {
  float worst = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (!(d <= worst)) {
      worst = d;
      if (where) *where = i;
    }
  }
  return worst;
}

float spread(const std::vector<float>& v) {
  double s = 0, s2 = 0;
  for (float x : v) s += x, s2 += static_cast<double>(x) * x;
  const double m = s / static_cast<double>(v.size());
  return static_cast<float>(std::sqrt(std::max(0.0, s2 / static_cast<double>(v.size()) - m * m)));
}

struct Case {
  std::string file;    // under gguf_models/
  std::string golden;  // golden fixture it came from ("" for none)
  std::string logits;  // oracle prompt logits under gguf_models/
  float tolerance;     // absolute, on logits
  bool golden_decode;  // also the golden decode logits and greedy tokens
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.file;
}

// Tolerances. Every case runs twice. With the CPU kernels' f32 path forced (MOE_QLINEAR_FLOAT's
// switch) both sides compute in f32 on identical weights, so the golden test's 2e-4 applies to
// every file, quantized or not: a wrong block decode, scale or row order moves these logits by
// units (undoing Mixtral's q/k permutation wrongly: 4.5). With the integer path (what runs by
// default where AVX2 is present) each activation row is rounded to 8-bit blocks of 32 before the
// dot products, as llama.cpp does: an error of up to 1/254 of each block's largest value per
// element, which through these 2-4 layer models moves logits (std ~3) by ~0.1; the bound there is
// 0.3, a tenth of the logit spread and still far below a decoding mistake.
constexpr float kIntPathTolerance = 0.3f;

const Case kCases[] = {
    {"mixtral_sharded_bf16.F32.gguf", "mixtral_sharded_bf16", "mixtral_sharded_bf16.F32.logits.npy", 2e-4f, true},
    {"olmoe_clip_f16.F32.gguf", "olmoe_clip_f16", "olmoe_clip_f16.F32.logits.npy", 2e-4f, true},
    {"qwen2_moe_shared_tied_bf16.F16.gguf", "qwen2_moe_shared_tied_bf16", "qwen2_moe_shared_tied_bf16.F16.logits.npy",
     2e-4f, false},
    {"qwen3_moe_qknorm_bf16.Q8_0.gguf", "qwen3_moe_qknorm_bf16", "qwen3_moe_qknorm_bf16.Q8_0.logits.npy", 2e-4f, false},
    {"mixtral_sharded_bf16.Q8_0.gguf", "mixtral_sharded_bf16", "mixtral_sharded_bf16.Q8_0.logits.npy", 2e-4f, false},
    {"kquant_qwen3moe.gguf", "", "kquant_qwen3moe.logits.npy", 2e-4f, false},
};

std::vector<int32_t> prompt_of(const Case& c) {
  const fs::path j =
      c.golden.empty() ? data("gguf_models/kquant_qwen3moe.json") : data("golden/" + c.golden + "/golden.json");
  std::ifstream in(j);
  return nlohmann::json::parse(in).at("prompt_ids").get<std::vector<int32_t>>();
}

class GgufModelTest : public ::testing::TestWithParam<Case> {};

// Forces (or not) the CPU kernels' f32 path for one scope.
class FloatPath {
 public:
  explicit FloatPath(bool on) : was_(cpu::qlinear_set_float(on)) {}
  ~FloatPath() { cpu::qlinear_set_float(was_); }

 private:
  bool was_;
};

// The prompt logits of `file` against `want`; returns the largest difference.
float prompt_diff(const fs::path& file, const std::vector<int32_t>& prompt, const NpyArray& want, float tolerance) {
  CpuBackend backend;
  std::unique_ptr<Model> model = Model::load(file, backend);
  const ModelConfig& c = model->config();
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  Transformer transformer(c, model->weights(), model->layout(), backend, 5);
  KvCache cache(backend, c, model->layout(), static_cast<int64_t>(prompt.size()));
  std::vector<float> logits;
  transformer.forward(prompt, cache, /*all_logits=*/true, logits);
  float worst = 0.0f;
  for (size_t t = 0; t < prompt.size(); ++t) {
    size_t at = 0;
    const float d = max_abs_diff(logits.data() + t * vocab, want.data.data() + t * vocab, vocab, &at);
    EXPECT_LE(d, tolerance) << "prompt position " << t << ", token " << at;
    worst = std::max(worst, d);
  }
  return worst;
}

TEST_P(GgufModelTest, MatchesTransformersOnTheIntegerPath) {
  const Case& k = GetParam();
  const NpyArray want = read_npy(data("gguf_models/" + k.logits));
  FloatPath f32(false);
  const float worst = prompt_diff(data("gguf_models/" + k.file), prompt_of(k), want, kIntPathTolerance);
  std::printf("[ gguf int ] %s: max |logit diff| = %.3g\n", k.file.c_str(), static_cast<double>(worst));
}

TEST_P(GgufModelTest, MatchesTransformers) {
  const Case& k = GetParam();
  const fs::path file = data("gguf_models/" + k.file);
  ASSERT_TRUE(is_gguf_model(file)) << file;
  FloatPath f32(true);
  CpuBackend backend;
  std::unique_ptr<Model> model = Model::load(file, backend);
  ASSERT_NE(model->gguf(), nullptr);
  const ModelConfig& c = model->config();
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  const std::vector<int32_t> prompt = prompt_of(k);
  const NpyArray want = read_npy(data("gguf_models/" + k.logits));
  ASSERT_EQ(want.shape, (std::vector<int64_t>{static_cast<int64_t>(prompt.size()), c.vocab_size}));

  Transformer transformer(c, model->weights(), model->layout(), backend, 5);
  KvCache cache(backend, c, model->layout(), static_cast<int64_t>(prompt.size()) + 16);
  std::vector<float> logits;
  transformer.forward(prompt, cache, /*all_logits=*/true, logits);
  float worst = 0.0f;
  for (size_t t = 0; t < prompt.size(); ++t) {
    size_t at = 0;
    const float d = max_abs_diff(logits.data() + t * vocab, want.data.data() + t * vocab, vocab, &at);
    EXPECT_LE(d, k.tolerance) << "prompt position " << t << ", token " << at;
    worst = std::max(worst, d);
  }
  std::printf("[ gguf     ] %s: max |logit diff| = %.3g (logit std %.3g)\n", k.file.c_str(), static_cast<double>(worst),
              static_cast<double>(spread(want.data)));

  if (k.golden_decode) {  // the golden fixture's decode rows and greedy tokens too
    std::ifstream in(data("golden/" + k.golden + "/golden.json"));
    const std::vector<int32_t> generated = nlohmann::json::parse(in).at("generated_ids").get<std::vector<int32_t>>();
    const NpyArray decode = read_npy(data("golden/" + k.golden + "/decode_logits.npy"));
    for (size_t s = 0; s + 1 < generated.size(); ++s) {
      const int32_t one[1] = {generated[s]};
      transformer.forward(one, cache, false, logits);
      EXPECT_LE(max_abs_diff(logits.data(), decode.data.data() + s * vocab, vocab), k.tolerance) << "decode step " << s;
    }
    KvCache fresh(backend, c, model->layout(), static_cast<int64_t>(prompt.size() + generated.size()));
    GenerationOptions opt;
    opt.max_new_tokens = static_cast<int64_t>(generated.size());
    EXPECT_EQ(generate(transformer, fresh, c.vocab_size, prompt, opt).tokens, generated);
  }
}

TEST_P(GgufModelTest, ConfigEqualsTheCheckpoints) {
  const Case& k = GetParam();
  if (k.golden.empty()) GTEST_SKIP() << "no checkpoint: the oracle is transformers' GGUF loader";
  const ModelConfig got = Model::read_config(data("gguf_models/" + k.file));
  const ModelConfig want = load_model_config(data("golden/" + k.golden));
  EXPECT_EQ(got.summary(), want.summary());
  EXPECT_EQ(got.arch, want.arch);
  EXPECT_EQ(got.layer_is_moe, want.layer_is_moe);
  EXPECT_EQ(got.layer_window, want.layer_window);
  EXPECT_EQ(got.renormalize_topk, want.renormalize_topk);
  EXPECT_EQ(got.qkv_bias, want.qkv_bias);
  EXPECT_EQ(got.o_bias, want.o_bias);
  EXPECT_EQ(got.clip_qkv, want.clip_qkv);
  EXPECT_EQ(got.tie_word_embeddings, want.tie_word_embeddings);
  EXPECT_EQ(got.head_dim, want.head_dim);
  EXPECT_EQ(got.dense_intermediate, want.dense_intermediate);
  EXPECT_EQ(got.shared_intermediate, want.shared_intermediate);
  EXPECT_FLOAT_EQ(got.rope_theta, want.rope_theta);
  EXPECT_FLOAT_EQ(got.rms_norm_eps, want.rms_norm_eps);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufModelTest, ::testing::ValuesIn(kCases), [](const auto& p) {
  std::string n = p.param.file.substr(0, p.param.file.size() - 5);
  for (char& ch : n)
    if (ch == '.') ch = '_';
  return n;
});

TEST(GgufModel, QuantizedTensorsKeepTheirGgmlTypes) {
  const fs::path file = data("gguf_models/kquant_qwen3moe.gguf");
  const GgufFile f = GgufFile::open(file);
  GgufSource src(std::make_shared<GgufFile>(GgufFile::open(file)), gguf_model_config(f));
  const TensorView q = src.tensor("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(q.quant.has_value());
  EXPECT_EQ(quant_format_name(*q.quant), "Q4_K");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{256, 256}));
  // Expert 3 of the stacked tensor: the last quarter of its bytes.
  const GgufTensorInfo* gate = f.find_tensor("blk.0.ffn_gate_exps.weight");
  ASSERT_NE(gate, nullptr);
  const TensorView e3 = src.tensor("model.layers.0.mlp.experts.3.gate_proj.weight");
  EXPECT_EQ(e3.nbytes, gate->nbytes / 4);
  EXPECT_EQ(static_cast<const uint8_t*>(e3.data),
            src.file().tensor_data(*src.file().find_tensor(gate->name)) + 3 * e3.nbytes);
  EXPECT_EQ(src.gguf_name("model.layers.0.mlp.experts.3.gate_proj.weight"), "blk.0.ffn_gate_exps.weight");
}

// `fn` throws moe::Error whose message contains every part.
template <class Fn>
void expect_error(Fn fn, std::initializer_list<std::string_view> parts) {
  try {
    fn();
  } catch (const Error& e) {
    for (const std::string_view p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}
#define EXPECT_ERROR_CONTAINS(stmt, ...) expect_error([&] { (void)(stmt); }, __VA_ARGS__)

// A minimal GGUF header of `arch` with the keys gguf_config_json reads (no weights needed).
test::GgufSpec config_spec(const std::string& arch, uint32_t experts) {
  test::GgufSpec s;
  s.kvs = {test::kv_str("general.architecture", arch),
           test::kv_u32(arch + ".block_count", 2),
           test::kv_u32(arch + ".embedding_length", 64),
           test::kv_u32(arch + ".feed_forward_length", 64),
           test::kv_u32(arch + ".attention.head_count", 4),
           test::kv_u32(arch + ".attention.head_count_kv", 2),
           test::kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f),
           test::kv_u32(arch + ".expert_count", experts),
           test::kv_u32(arch + ".expert_used_count", 2)};
  s.add_f32("token_embd.weight", {64, 8}, std::vector<float>(64 * 8, 0.0f));
  return s;
}

TEST(GgufModel, RefusesWhatItCannotRun) {
  const fs::path dir = fs::path(::testing::TempDir()) / "gguf_model_errors";
  fs::create_directories(dir);
  const fs::path file = dir / "m.gguf";
  test::write_gguf(file, config_spec("llama", 4));
  EXPECT_NO_THROW(Model::read_config(file));
  // A dense llama: not a mixture of experts.
  test::write_gguf(file, config_spec("llama", 0));
  EXPECT_ERROR_CONTAINS(Model::read_config(file), {"m.gguf", "llama.expert_count", "dense"});
  // An architecture we do not run: named, with the supported ones.
  test::write_gguf(file, config_spec("mamba", 4));
  EXPECT_ERROR_CONTAINS(Model::read_config(file), {"m.gguf", "'mamba'", "qwen3moe", "olmoe"});
  // A required key missing: named.
  test::GgufSpec s = config_spec("qwen3moe", 4);
  EXPECT_ERROR_CONTAINS(Model::read_config((test::write_gguf(file, s), file)),
                        {"m.gguf", "qwen3moe.expert_feed_forward_length"});
}

TEST(GgufModel, RefusesATypeTheKernelsDoNotCompute) {
  const fs::path dir = fs::path(::testing::TempDir()) / "gguf_model_types";
  fs::create_directories(dir);
  const fs::path file = dir / "m.gguf";
  test::GgufSpec s = config_spec("llama", 4);
  s.add_tensor("blk.0.attn_norm.weight", {256}, 16, std::string(66, '\0'));  // IQ2_XXS: 256 per 66 bytes
  test::write_gguf(file, s);
  const GgufFile f = GgufFile::open(file);
  EXPECT_ERROR_CONTAINS(GgufSource(std::make_shared<GgufFile>(GgufFile::open(file)), gguf_model_config(f)),
                        {"m.gguf", "blk.0.attn_norm.weight", "IQ2_XXS", "Q4_K"});
}

}  // namespace
}  // namespace moe
