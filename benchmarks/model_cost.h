// What one token costs a model, from its config and weight dtype alone (no weights loaded):
// parameter counts, the weight bytes one decoded token reads, the KV-cache bytes it reads, and
// the matmul FLOPs of a prompt. The decode bound (PERFORMANCE.md: decode reads every active
// weight once per token) is a measured bandwidth divided by these bytes.
#pragma once

#include <cstdint>

#include "kernels/common/dtype.h"
#include "runtime/model/config.h"

namespace moe::bench {

struct ModelCost {
  // Parameters stored in the checkpoint (the embedding counted once when tied).
  int64_t params_total = 0;
  // Parameters one decoded token reads: every layer's attention, norms, router, top_k routed
  // experts (and the shared expert / dense MLP where the architecture has them), the final norm,
  // the LM head (vocab x hidden) and one embedding row.
  int64_t params_active = 0;
  // Of params_active, those in matrix products (everything but norms, biases, the embedding
  // row): 2 FLOPs each per token.
  int64_t params_active_matmul = 0;
  // LM head parameters (vocab x hidden): run once per prompt, not once per prompt token.
  int64_t params_lm_head = 0;
  int64_t bytes_per_param = 0;
  // params_active * bytes_per_param.
  uint64_t weight_bytes_per_token = 0;
};

ModelCost model_cost(const ModelConfig& c, DType weight_dtype);

// Bytes of K and V (f32, as KvCache stores them) one decoded token reads from the cache when it
// attends to `context` positions, summed over the layers (sliding windows respected).
uint64_t kv_bytes_read(const ModelConfig& c, double context);

// Matmul FLOPs of a whole prompt forward of `prompt_tokens` tokens: 2 x the active matmul
// parameters per token for the layers, the LM head once (only the last row's logits are
// computed), plus attention scores and weighted sums (4 x q_width x visible positions per layer).
double prefill_flops(const ModelConfig& c, const ModelCost& cost, int64_t prompt_tokens);

}  // namespace moe::bench
