#include "runtime/model/architecture.h"

#include <array>

namespace moe {
namespace {

constexpr ArchSpec kMixtral{
    .hf_name = "MixtralForCausalLM",
    .model_type = "mixtral",
    .n_experts_key = "num_local_experts",
    .expert_width_key = "intermediate_size",
    .qkv_bias_key = "",
    .default_rope_theta = 1e6,
    .default_rms_norm_eps = 1e-5,
    .renormalize = Renormalize::kAlways,
    .sliding_window = SlidingWindow::kAllLayers,
    .moe_block = "block_sparse_moe",
    .expert_gate = "w1",
    .expert_up = "w3",
    .expert_down = "w2",
};

constexpr ArchSpec kQwen2Moe{
    .hf_name = "Qwen2MoeForCausalLM",
    .model_type = "qwen2_moe",
    .n_experts_key = "num_experts",
    .expert_width_key = "moe_intermediate_size",
    .qkv_bias_key = "qkv_bias",
    .qkv_bias_default = true,
    .default_rms_norm_eps = 1e-6,
    .sparse_layers = SparseLayers::kStepAndExclude,
    .sliding_window = SlidingWindow::kLayerTypes,
    .shared_expert = true,
    .moe_block = "mlp",
    .expert_gate = "gate_proj",
    .expert_up = "up_proj",
    .expert_down = "down_proj",
};

constexpr ArchSpec kQwen3Moe{
    .hf_name = "Qwen3MoeForCausalLM",
    .model_type = "qwen3_moe",
    .n_experts_key = "num_experts",
    .n_experts_alt_key = "num_local_experts",
    .expert_width_key = "moe_intermediate_size",
    .qkv_bias_key = "attention_bias",
    .o_proj_bias_follows_key = true,
    .default_rms_norm_eps = 1e-6,
    .qk_norm = QkNorm::kPerHead,
    .sparse_layers = SparseLayers::kStepAndExclude,
    .sliding_window = SlidingWindow::kUseFlag,
    .moe_block = "mlp",
    .expert_gate = "gate_proj",
    .expert_up = "up_proj",
    .expert_down = "down_proj",
};

constexpr ArchSpec kOlmoe{
    .hf_name = "OlmoeForCausalLM",
    .model_type = "olmoe",
    .n_experts_key = "num_experts",
    .expert_width_key = "intermediate_size",
    .qkv_bias_key = "attention_bias",
    .o_proj_bias_follows_key = true,
    .default_rms_norm_eps = 1e-5,
    .qk_norm = QkNorm::kFullWidth,
    .clip_qkv = true,
    .moe_block = "mlp",
    .expert_gate = "gate_proj",
    .expert_up = "up_proj",
    .expert_down = "down_proj",
};

constexpr std::array<ArchSpec, 4> kArchitectures = {kMixtral, kQwen2Moe, kQwen3Moe, kOlmoe};

}  // namespace

std::span<const ArchSpec> supported_architectures() {
  return kArchitectures;
}

const ArchSpec* find_architecture(std::string_view hf_name) {
  for (const ArchSpec& a : kArchitectures)
    if (a.hf_name == hf_name) return &a;
  return nullptr;
}

}  // namespace moe
