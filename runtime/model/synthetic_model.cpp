#include "runtime/model/synthetic_model.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/architecture.h"
#include "runtime/model/config.h"
#include "runtime/model/synthetic_rng.h"

namespace moe {
namespace {

using nlohmann::json;

std::vector<uint8_t> encode(const std::vector<float>& v, DType t) {
  MOE_CHECK(dtype_is_compute(t), "synthetic model: dtype ", dtype_name(t), " is not a weight dtype");
  std::vector<uint8_t> out(v.size() * static_cast<size_t>(dtype_bits(t)) / 8);
  for (size_t i = 0; i < v.size(); ++i) {
    switch (compute_type(t)) {
      case ComputeType::kF32: std::memcpy(out.data() + 4 * i, &v[i], 4); break;
      case ComputeType::kBF16: {
        const uint16_t h = f32_to_bf16(v[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
        break;
      }
      case ComputeType::kF16: {
        const uint16_t h = f32_to_f16(v[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
        break;
      }
    }
  }
  return out;
}

class TensorSink {
 public:
  TensorSink(const SyntheticModelSpec& s) : spec_(s), rng_(s.seed) {}
  // Uniform with the variance of N(0, gain^2 / fan_in).
  void matrix(const std::string& name, int64_t rows, int64_t cols, double gain = 1.0) {
    const float scale = static_cast<float>(gain * std::sqrt(3.0 / static_cast<double>(cols)));
    fill(name, {rows, cols}, [&] { return scale * rng_.symmetric(); });
  }
  // A router: as matrix(), then mixed with the first router written when the spec correlates
  // them. Draws the same random numbers as matrix(), so other tensors do not change.
  void router(const std::string& name, int64_t rows, int64_t cols, double gain) {
    const double c = spec_.router_correlation;
    MOE_CHECK(c >= 0 && c <= 1, "synthetic model: router_correlation must be in [0, 1], got ", c);
    const float scale = static_cast<float>(gain * std::sqrt(3.0 / static_cast<double>(cols)));
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (float& x : v) x = scale * rng_.symmetric();
    if (c > 0) {
      if (first_router_.empty()) {
        first_router_ = v;
      } else {
        MOE_CHECK(first_router_.size() == v.size(), "synthetic model: routers of different shapes");
        const auto a = static_cast<float>(c), b = static_cast<float>(std::sqrt(1.0 - c * c));
        for (size_t i = 0; i < v.size(); ++i) v[i] = a * first_router_[i] + b * v[i];
      }
    }
    writer_.add(name, spec_.dtype, {rows, cols}, encode(v, spec_.dtype));
    params_ += rows * cols;
  }
  void norm(const std::string& name, int64_t n) {
    fill(name, {n}, [&] { return 1.0f + 0.1f * rng_.symmetric(); });
  }
  void bias(const std::string& name, int64_t n) {
    fill(name, {n}, [&] { return 0.1f * rng_.symmetric(); });
  }
  int64_t params() const { return params_; }
  SafetensorsWriter& writer() { return writer_; }

 private:
  template <class Gen>
  void fill(const std::string& name, std::vector<int64_t> shape, Gen gen) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = gen();
    writer_.add(name, spec_.dtype, std::move(shape), encode(v, spec_.dtype));
    params_ += n;
  }
  const SyntheticModelSpec& spec_;
  SyntheticRng rng_;
  std::vector<float> first_router_;  // with router_correlation > 0
  SafetensorsWriter writer_;
  int64_t params_ = 0;
};

json make_config(const SyntheticModelSpec& s, const ArchSpec& a) {
  json j;
  j["architectures"] = {s.architecture};
  j["model_type"] = a.model_type;
  j["vocab_size"] = s.vocab_size;
  j["hidden_size"] = s.hidden_size;
  j["num_hidden_layers"] = s.num_layers;
  j["num_attention_heads"] = s.num_heads;
  j["num_key_value_heads"] = s.num_kv_heads;
  if (s.head_dim) j["head_dim"] = s.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = s.max_position_embeddings;
  j["rms_norm_eps"] = s.rms_norm_eps;
  j["rope_parameters"] = {{"rope_theta", s.rope_theta}, {"rope_type", "default"}};
  j["tie_word_embeddings"] = s.tie_word_embeddings;
  j["bos_token_id"] = s.bos_token_id;
  j["eos_token_id"] = s.eos_token_id;
  j["torch_dtype"] = s.dtype == DType::kBF16 ? "bfloat16" : s.dtype == DType::kF16 ? "float16" : "float32";
  j[std::string(a.n_experts_key)] = s.num_experts;
  j["num_experts_per_tok"] = s.experts_per_token;
  j[std::string(a.expert_width_key)] = s.expert_intermediate;
  if (a.renormalize == Renormalize::kFromConfig) j["norm_topk_prob"] = s.norm_topk_prob;
  if (!a.qkv_bias_key.empty()) j[std::string(a.qkv_bias_key)] = s.qkv_bias;
  if (a.sparse_layers == SparseLayers::kStepAndExclude) {
    j["decoder_sparse_step"] = s.decoder_sparse_step;
    j["mlp_only_layers"] = json::array();
    if (a.expert_width_key != "intermediate_size") j["intermediate_size"] = s.dense_intermediate;
  }
  if (a.shared_expert) j["shared_expert_intermediate_size"] = s.shared_intermediate;
  if (a.sliding_window == SlidingWindow::kAllLayers) j["sliding_window"] = nullptr;
  return j;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) fail(path.string(), ": cannot write (", std::strerror(errno), ")");
}

using Fill = SyntheticTensor::Fill;
using Visit = std::function<void(const SyntheticTensor&)>;

void visit_mlp(const Visit& fn, const std::string& p, int64_t h, int64_t width, const ArchSpec& a, int64_t layer,
               int64_t expert) {
  const bool routed = expert >= 0;
  fn({p + std::string(routed ? a.expert_gate : "gate_proj") + ".weight",
      {width, h},
      Fill::kMatrix,
      1.0,
      layer,
      expert});
  fn({p + std::string(routed ? a.expert_up : "up_proj") + ".weight", {width, h}, Fill::kMatrix, 1.0, layer, expert});
  fn({p + std::string(routed ? a.expert_down : "down_proj") + ".weight",
      {h, width},
      Fill::kMatrix,
      1.0,
      layer,
      expert});
}

}  // namespace

SyntheticModelSpec tiny_model_spec(const std::string& arch) {
  SyntheticModelSpec s;
  const std::string key = arch;
  if (key == "mixtral" || key == "MixtralForCausalLM") {
    s.architecture = "MixtralForCausalLM";
  } else if (key == "qwen2_moe" || key == "Qwen2MoeForCausalLM") {
    s.architecture = "Qwen2MoeForCausalLM";
    s.qkv_bias = true;
    s.norm_topk_prob = false;
    s.decoder_sparse_step = 2;
    s.num_layers = 4;
    s.experts_per_token = 4;
  } else if (key == "qwen3_moe" || key == "Qwen3MoeForCausalLM") {
    s.architecture = "Qwen3MoeForCausalLM";
    s.head_dim = 32;
  } else if (key == "olmoe" || key == "OlmoeForCausalLM") {
    s.architecture = "OlmoeForCausalLM";
    s.norm_topk_prob = false;
  } else {
    fail("unknown architecture '", arch, "'; known: mixtral, qwen2_moe, qwen3_moe, olmoe");
  }
  return s;
}

std::string synthetic_config_json(const SyntheticModelSpec& s) {
  const ArchSpec* a = find_architecture(s.architecture);
  MOE_CHECK(a, "synthetic model: unknown architecture '", s.architecture, "'");
  return make_config(s, *a).dump(2);
}

void for_each_synthetic_tensor(const SyntheticModelSpec& s, const std::function<void(const SyntheticTensor&)>& fn) {
  const ArchSpec* a = find_architecture(s.architecture);
  MOE_CHECK(a, "synthetic model: unknown architecture '", s.architecture, "'");
  // Parse what is about to be written with the real parser: the model is valid by construction.
  const ModelConfig c = parse_model_config(make_config(s, *a).dump(2), "config.json");
  const int64_t h = c.hidden_size;
  const auto matrix = [&](std::string name, int64_t rows, int64_t cols, double gain = 1.0) {
    fn({std::move(name), {rows, cols}, Fill::kMatrix, gain, -1, -1});
  };
  const auto norm = [&](std::string name, int64_t n) { fn({std::move(name), {n}, Fill::kNorm, 1.0, -1, -1}); };
  const auto bias = [&](std::string name, int64_t n) { fn({std::move(name), {n}, Fill::kBias, 1.0, -1, -1}); };
  matrix("model.embed_tokens.weight", c.vocab_size, h, std::sqrt(static_cast<double>(h)) * 0.5);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = str_cat("model.layers.", i, ".");
    norm(p + "input_layernorm.weight", h);
    norm(p + "post_attention_layernorm.weight", h);
    const std::string at = p + "self_attn.";
    matrix(at + "q_proj.weight", c.q_width(), h);
    matrix(at + "k_proj.weight", c.kv_width(), h);
    matrix(at + "v_proj.weight", c.kv_width(), h);
    matrix(at + "o_proj.weight", h, c.q_width());
    if (c.qkv_bias) {
      bias(at + "q_proj.bias", c.q_width());
      bias(at + "k_proj.bias", c.kv_width());
      bias(at + "v_proj.bias", c.kv_width());
    }
    if (c.o_bias) bias(at + "o_proj.bias", h);
    switch (a->qk_norm) {
      case QkNorm::kNone: break;
      case QkNorm::kPerHead:
        norm(at + "q_norm.weight", c.head_dim);
        norm(at + "k_norm.weight", c.head_dim);
        break;
      case QkNorm::kFullWidth:
        norm(at + "q_norm.weight", c.q_width());
        norm(at + "k_norm.weight", c.kv_width());
        break;
    }
    if (!c.layer_is_moe[static_cast<size_t>(i)]) {
      visit_mlp(fn, p + "mlp.", h, c.dense_intermediate, *a, -1, -1);
      continue;
    }
    const std::string block = str_cat(p, a->moe_block, ".");
    fn({block + "gate.weight", {c.num_experts, h}, Fill::kMatrix, 4.0, -1, -1, /*router=*/true});
    for (int64_t e = 0; e < c.num_experts; ++e)
      visit_mlp(fn, str_cat(block, "experts.", e, "."), h, c.expert_intermediate, *a, i, e);
    if (a->shared_expert) {
      visit_mlp(fn, block + "shared_expert.", h, c.shared_intermediate, *a, -1, -1);
      matrix(block + "shared_expert_gate.weight", 1, h);
    }
  }
  norm("model.norm.weight", h);
  if (!c.tie_word_embeddings) matrix("lm_head.weight", c.vocab_size, h, 4.0);
}

int64_t write_synthetic_model(const SyntheticModelSpec& s, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::string config_json = synthetic_config_json(s);
  TensorSink t(s);
  for_each_synthetic_tensor(s, [&](const SyntheticTensor& x) {
    switch (x.fill) {
      case Fill::kMatrix:
        if (x.router) {
          t.router(x.name, x.shape[0], x.shape[1], x.gain);
        } else {
          t.matrix(x.name, x.shape[0], x.shape[1], x.gain);
        }
        break;
      case Fill::kNorm: t.norm(x.name, x.shape[0]); break;
      case Fill::kBias: t.bias(x.name, x.shape[0]); break;
    }
  });
  t.writer().set_metadata({{"format", "pt"}});
  t.writer().write(dir / "model.safetensors");
  write_text(dir / "config.json", config_json + "\n");
  json gen = {{"bos_token_id", s.bos_token_id}, {"eos_token_id", s.eos_token_id}};
  write_text(dir / "generation_config.json", gen.dump(2) + "\n");
  return t.params();
}

}  // namespace moe
