// The architecture table: everything that differs between the MoE decoder families we load,
// as data. The forward pass reads these fields; adding an architecture is adding a row here
// (and, if it needs one, a new op), never a new forward pass.
#pragma once

#include <span>
#include <string_view>

namespace moe {

// How the router's top-k weights are formed from its logits.
enum class RoutingRule {
  kSoftmaxTopK,  // softmax over all experts, top-k, renormalise per `renormalize`
};

// Whether the chosen top-k weights are divided by their sum.
enum class Renormalize {
  kAlways,      // Mixtral
  kFromConfig,  // config key norm_topk_prob (Qwen2/3-MoE, OLMoE)
};

// RMSNorm of queries and keys before RoPE.
enum class QkNorm {
  kNone,
  kPerHead,    // Qwen3-MoE: weight (head_dim), applied to every head
  kFullWidth,  // OLMoE: weight (n_heads * head_dim) / (n_kv_heads * head_dim), before the head split
};

// Which layers have a sparse MoE block and which a dense MLP.
enum class SparseLayers {
  kAll,             // every layer is MoE (Mixtral, OLMoE)
  kStepAndExclude,  // MoE iff i not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0 (Qwen)
};

// Where the sliding-window size comes from.
enum class SlidingWindow {
  kNone,        // never (OLMoE)
  kAllLayers,   // `sliding_window` when non-null applies to every layer (Mixtral)
  kUseFlag,     // `sliding_window` on every layer iff use_sliding_window (Qwen3-MoE)
  kLayerTypes,  // iff use_sliding_window, on the layers layer_types marks "sliding_attention",
                // default: (i + 1) % 2 != 0 && i < max_window_layers (Qwen2-MoE)
};

struct ArchSpec {
  std::string_view hf_name = "";     // config.json architectures[0]
  std::string_view model_type = "";  // config.json model_type

  // ---- config keys that differ ----
  std::string_view n_experts_key = "";      // "num_local_experts" | "num_experts"
  std::string_view n_experts_alt_key = "";  // also accepted (transformers 5 writes Qwen3-MoE's
                                            // count as num_local_experts); "" when none
  std::string_view expert_width_key = "";   // "intermediate_size" | "moe_intermediate_size"
  std::string_view qkv_bias_key = "";       // "" when never biased; "qkv_bias" | "attention_bias"
  bool o_proj_bias_follows_key = false;     // attention_bias also biases o_proj (OLMoE, Qwen3)
  bool qkv_bias_default = false;            // value when the key is absent
  double default_rope_theta = 10000.0;
  double default_rms_norm_eps = 1e-6;

  // ---- behaviour ----
  RoutingRule routing = RoutingRule::kSoftmaxTopK;
  Renormalize renormalize = Renormalize::kFromConfig;
  QkNorm qk_norm = QkNorm::kNone;
  SparseLayers sparse_layers = SparseLayers::kAll;
  SlidingWindow sliding_window = SlidingWindow::kNone;
  bool shared_expert = false;  // Qwen2-MoE: shared MLP + sigmoid(shared_expert_gate) scale
  bool clip_qkv = false;       // OLMoE: clamp q, k, v to [-clip_qkv, clip_qkv] after the q/k norm

  // ---- tensor names under model.layers.N. ----
  std::string_view moe_block = "";    // "block_sparse_moe" | "mlp"
  std::string_view expert_gate = "";  // per-expert names: "w1" | "gate_proj"
  std::string_view expert_up = "";    // "w3" | "up_proj"
  std::string_view expert_down = "";  // "w2" | "down_proj"
};

// Every supported architecture.
std::span<const ArchSpec> supported_architectures();
// nullptr when `hf_name` is not in the table.
const ArchSpec* find_architecture(std::string_view hf_name);

}  // namespace moe
