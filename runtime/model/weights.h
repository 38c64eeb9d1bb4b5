// The model's weights bound to a backend: every tensor the forward pass reads, found by name,
// shape-checked against the config, for this process's layer range and tensor-parallel shard.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/model/config.h"
#include "runtime/model/weight_shard.h"
#include "runtime/model/weight_source.h"

namespace moe {

struct AttentionWeights {
  Tensor q, k, v, o;                      // (q_width, H), (kv_width, H), (kv_width, H), (H, q_width)
  Tensor q_bias, k_bias, v_bias, o_bias;  // (q_width), (kv_width), (kv_width), (H); empty when absent
  Tensor q_norm, k_norm;                  // (head_dim) per-head, or (q_width)/(kv_width) full width; empty when absent
};

struct MoeWeights {
  Tensor router;                    // (E, H)
  std::vector<MlpWeights> experts;  // E experts, each gate/up (I, H), down (H, I)
  MlpWeights shared;                // shared expert (Qwen2-MoE); empty tensors when absent
  Tensor shared_gate;               // (1, H); empty when absent
};

struct LayerWeights {
  int64_t index = 0;  // global layer number
  Tensor attn_norm;   // input_layernorm (H)
  Tensor ffn_norm;    // post_attention_layernorm (H)
  AttentionWeights attn;
  bool is_moe = true;
  MoeWeights moe;    // when is_moe
  MlpWeights dense;  // when !is_moe: (dense_intermediate, H) ...
};

// Which on-disk layout the routed experts used (reported in load stats).
enum class ExpertForm { kPerExpert, kFused };

struct ModelWeights {
  Tensor embed;                      // (V, H); first stage (and the last when tied)
  Tensor final_norm;                 // (H); last stage
  Tensor lm_head;                    // (V, H); last stage (the embedding when tied)
  std::vector<LayerWeights> layers;  // the layout's layer range, in order
  ExpertForm expert_form = ExpertForm::kPerExpert;
  // Tensor parallel: column shards copied out of the file, which the tensors above point into.
  std::shared_ptr<ShardStorage> shards;
  uint64_t bytes = 0;         // bytes of every tensor bound
  uint64_t expert_bytes = 0;  // of which routed experts

  // Weight bytes one decoded token reads (batch 1): every bound layer's attention, norms,
  // router, `top_k` of its routed experts (all experts of a layer are the same size), shared
  // expert or dense MLP, the final norm, the LM head and one embedding row. Storage bytes, so
  // quantized tensors count at their packed size.
  uint64_t decode_bytes_per_token(int64_t top_k) const;
};

// Finds and checks every tensor. Throws moe::Error naming the checkpoint directory, the
// tensor, and the expected vs found shape/dtype (with the config keys that set the
// expectation) for: a missing tensor, a wrong shape, a dtype the backend cannot compute with.
// Quantized tensors (from a packed store) are accepted wherever a weight matrix is.
// Accepts routed experts both per expert (`...experts.E.w1.weight`, `...experts.E.gate_proj.weight`)
// and fused (`...mlp.experts.gate_up_proj` (E, 2I, H) gate rows first, `...mlp.experts.down_proj` (E, H, I)).
//
// `experts`: kResident hands every routed expert to the backend (load_weight) like any other
// weight. kMapped leaves them where the source mapped them: MlpWeights that alias the file's
// bytes in the stored layout (host memory, Device::kCpu), checked like the rest but never copied
// or rearranged, for runs whose experts are served by the offloading tiers (runtime/offload)
// within a memory budget. They stay usable by the CPU backend's ops, not by a device backend.
enum class ExpertBinding : uint8_t { kResident, kMapped };
ModelWeights bind_weights(const ModelConfig& config, const WeightSource& source, const ParallelLayout& layout,
                          Backend& backend, ExpertBinding experts = ExpertBinding::kResident);

}  // namespace moe
