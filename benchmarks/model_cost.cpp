#include "benchmarks/model_cost.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/model/architecture.h"

namespace moe::bench {
namespace {

struct LayerParams {
  int64_t total = 0;          // stored
  int64_t active = 0;         // read by one token
  int64_t active_matmul = 0;  // of active, in matrix products
};

LayerParams layer_params(const ModelConfig& c, size_t layer) {
  const int64_t h = c.hidden_size, qw = c.q_width(), kvw = c.kv_width();
  LayerParams p;
  // Attention projections, then norms and biases (vectors).
  const int64_t attn_mat = qw * h + 2 * kvw * h + h * qw;
  int64_t vectors = 2 * h;  // input_layernorm, post_attention_layernorm
  if (c.qkv_bias) vectors += qw + 2 * kvw;
  if (c.o_bias) vectors += h;
  switch (c.arch->qk_norm) {
    case QkNorm::kNone: break;
    case QkNorm::kPerHead: vectors += 2 * c.head_dim; break;
    case QkNorm::kFullWidth: vectors += qw + kvw; break;
  }
  p.total = attn_mat + vectors;
  p.active = attn_mat + vectors;
  p.active_matmul = attn_mat;

  if (!c.layer_is_moe[layer]) {
    const int64_t mlp = 3 * c.dense_intermediate * h;
    p.total += mlp;
    p.active += mlp;
    p.active_matmul += mlp;
    return p;
  }
  const int64_t router = c.num_experts * h;
  const int64_t expert = 3 * c.expert_intermediate * h;  // gate + up + down
  int64_t shared = 0;
  if (c.arch->shared_expert && c.shared_intermediate > 0) shared = 3 * c.shared_intermediate * h + h;  // + gate row
  p.total += router + c.num_experts * expert + shared;
  const int64_t used = router + c.experts_per_token * expert + shared;
  p.active += used;
  p.active_matmul += used;
  return p;
}

}  // namespace

ModelCost model_cost(const ModelConfig& c, DType weight_dtype) {
  MOE_CHECK(c.arch != nullptr, "model_cost: config has no architecture");
  MOE_CHECK(dtype_is_compute(weight_dtype), "model_cost: ", dtype_name(weight_dtype), " is not a weight dtype");
  ModelCost m;
  const int64_t h = c.hidden_size, table = c.vocab_size * h;
  m.params_lm_head = table;
  for (size_t i = 0; i < static_cast<size_t>(c.num_layers); ++i) {
    const LayerParams p = layer_params(c, i);
    m.params_total += p.total;
    m.params_active += p.active;
    m.params_active_matmul += p.active_matmul;
  }
  // Embedding table (one row read per token), final norm, LM head (the table itself when tied).
  m.params_total += table + h + (c.tie_word_embeddings ? 0 : table);
  m.params_active += h + h + table;
  m.params_active_matmul += table;
  m.bytes_per_param = dtype_bits(weight_dtype) / 8;
  m.weight_bytes_per_token = static_cast<uint64_t>(m.params_active) * static_cast<uint64_t>(m.bytes_per_param);
  return m;
}

uint64_t kv_bytes_read(const ModelConfig& c, double context) {
  double positions = 0;
  for (size_t i = 0; i < static_cast<size_t>(c.num_layers); ++i) {
    const auto window = static_cast<double>(c.layer_window[i]);
    positions += window > 0 ? std::min(context, window) : context;
  }
  // K and V, kv_width floats per position.
  return static_cast<uint64_t>(positions * 2.0 * static_cast<double>(c.kv_width()) * sizeof(float));
}

double prefill_flops(const ModelConfig& c, const ModelCost& cost, int64_t prompt_tokens) {
  const auto t = static_cast<double>(prompt_tokens);
  const double layer_matmul = static_cast<double>(cost.params_active_matmul - cost.params_lm_head);
  double flops = 2.0 * layer_matmul * t + 2.0 * static_cast<double>(cost.params_lm_head);
  // Token i (0-based) sees i + 1 positions (or the window): q.k and p.v, 2 FLOPs each per element.
  for (size_t l = 0; l < static_cast<size_t>(c.num_layers); ++l) {
    double visible = 0;
    for (int64_t i = 0; i < prompt_tokens; ++i) {
      const auto seen = static_cast<double>(i + 1);
      const auto window = static_cast<double>(c.layer_window[l]);
      visible += window > 0 ? std::min(seen, window) : seen;
    }
    flops += 4.0 * static_cast<double>(c.q_width()) * visible;
  }
  return flops;
}

}  // namespace moe::bench
