// Router: per token, softmax over the expert logits (f32, max subtracted), the top-k experts
// (descending probability, equal probabilities lower index first) and their weights, optionally
// renormalised to sum to one (Mixtral, Qwen3-MoE) or not (Qwen2-MoE, OLMoE): the
// architecture's weighting rule is the `renormalize` flag. One warp per token, E <= 1024.
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

constexpr int kRoutingMaxExperts = 1024;

// logits (T, E) -> ids, weights (T, top_k) in device (or mapped pinned) memory.
void softmax_topk(const float* logits, int T, int E, int top_k, bool renormalize, int32_t* ids, float* weights,
                  cudaStream_t stream);

}  // namespace moe::cuda
