// Writes a random-weight model in the real Hugging Face layout (config.json,
// generation_config.json, model.safetensors with the Hub's tensor names) for any supported
// architecture: the embedded default model of `moe make-tiny`, test models, and benchmark
// models in real shapes. No network, deterministic for a seed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"

namespace moe {

struct SyntheticModelSpec {
  std::string architecture = "MixtralForCausalLM";  // a supported_architectures() name
  int64_t vocab_size = 512;
  int64_t hidden_size = 64;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t head_dim = 0;  // 0: hidden_size / num_heads
  int64_t num_experts = 8;
  int64_t experts_per_token = 2;
  int64_t expert_intermediate = 128;
  int64_t dense_intermediate = 256;   // Qwen dense layers (decoder_sparse_step), when used
  int64_t shared_intermediate = 128;  // Qwen2-MoE shared expert
  int64_t decoder_sparse_step = 1;
  bool norm_topk_prob = true;
  bool qkv_bias = false;  // Qwen2-MoE qkv_bias / Qwen3, OLMoE attention_bias
  bool tie_word_embeddings = false;
  double rope_theta = 1e6;
  double rms_norm_eps = 1e-5;
  int64_t max_position_embeddings = 4096;
  int32_t bos_token_id = 1;
  int32_t eos_token_id = 2;
  DType dtype = DType::kBF16;
  uint64_t seed = 0;
  // Routers correlated across layers, as trained models' are (an expert chosen at one layer makes
  // related experts likely at the next): layer l's router is c * R + sqrt(1 - c^2) * its own
  // random matrix, R the first MoE layer's. 0: independent (the default; every earlier model).
  double router_correlation = 0;
};

// The small default per architecture ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", or an
// HF architecture name). Throws moe::Error for an unknown name, listing the known ones.
SyntheticModelSpec tiny_model_spec(const std::string& arch);

// Writes the model into `dir` (created; existing model files are replaced). Weights are
// N(0, 1/fan_in)-like uniform values, norms around 1, so activations stay O(1). Returns the
// number of parameters written.
int64_t write_synthetic_model(const SyntheticModelSpec& spec, const std::filesystem::path& dir);

// The config.json a synthetic model of `spec` carries (checked by the real parser).
std::string synthetic_config_json(const SyntheticModelSpec& spec);

// One tensor of a synthetic model and how write_synthetic_model fills it.
struct SyntheticTensor {
  enum class Fill : uint8_t { kMatrix, kNorm, kBias };
  std::string name;            // Hub name
  std::vector<int64_t> shape;  // (rows, cols) for matrices, (n) otherwise
  Fill fill = Fill::kMatrix;   // kMatrix: uniform with the variance of gain^2 / cols; kNorm: 1 +-0.1; kBias: +-0.1
  double gain = 1.0;           // kMatrix
  int64_t layer = -1;          // routed experts: their layer and index (else -1)
  int64_t expert = -1;
  bool router = false;  // a MoE router (SyntheticModelSpec::router_correlation applies)
};
// Every tensor of a synthetic model of `spec`, in the order write_synthetic_model writes them
// (a routed expert's gate, up, down one after the other).
void for_each_synthetic_tensor(const SyntheticModelSpec& spec, const std::function<void(const SyntheticTensor&)>& fn);

}  // namespace moe
