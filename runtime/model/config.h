// One model description for every supported architecture, parsed from a Hugging Face
// config.json (and generation_config.json for stop tokens).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/model/architecture.h"

namespace moe {

struct ModelConfig {
  std::filesystem::path source;  // the config.json it was read from
  const ArchSpec* arch = nullptr;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // `head_dim` key, else hidden_size / num_heads
  int64_t max_position_embeddings = 0;

  int64_t num_experts = 0;
  int64_t experts_per_token = 0;    // top-k
  int64_t expert_intermediate = 0;  // width of one routed expert
  int64_t dense_intermediate = 0;   // width of the dense MLP layers (0 when there are none)
  int64_t shared_intermediate = 0;  // width of the shared expert (0 when none)
  bool renormalize_topk = false;    // resolved from the arch rule and norm_topk_prob

  bool qkv_bias = false;
  bool o_bias = false;
  std::optional<float> clip_qkv;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  bool tie_word_embeddings = false;

  std::vector<bool> layer_is_moe;     // [num_layers]
  std::vector<int64_t> layer_window;  // [num_layers], 0 = full causal attention

  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // config.json, then generation_config.json
  // What was accepted but ignored, one message each (naming the file and key): e.g. a special
  // token id outside the vocabulary, which transformers accepts too. Front ends print them.
  std::vector<std::string> warnings;

  int64_t q_width() const { return num_heads * head_dim; }
  int64_t kv_width() const { return num_kv_heads * head_dim; }
  bool has_dense_layers() const;
  // One line: "MixtralForCausalLM: 32 layers, hidden 4096, 32/8 heads x 128, 8 experts top-2 x 14336, vocab 32000"
  std::string summary() const;
};

// Reads <dir>/config.json (and <dir>/generation_config.json when present). Throws moe::Error
// naming the file and the key for: missing file, invalid JSON, unknown architecture (listing
// the supported ones), a required key missing or of the wrong type, values that contradict
// each other (heads not divisible by kv heads, top-k > experts, hidden_size not divisible by
// heads without head_dim, odd head_dim, ...), and features we do not implement (hidden_act
// other than silu, rope types other than default, use_sliding_window with unknown layer_types).
ModelConfig load_model_config(const std::filesystem::path& model_dir);

// Same, from JSON text already in memory (`source` is only used in messages).
ModelConfig parse_model_config(const std::string& json_text, const std::filesystem::path& source);

}  // namespace moe
