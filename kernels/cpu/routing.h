// Top-k expert selection from router logits (the softmax family of routing rules).
#pragma once

#include <cstdint>

namespace moe::cpu {

// For each of T tokens: p = softmax(logits[t, :E]) in f32 (max subtracted), then the top_k
// largest p in descending order; equal p are taken lower expert index first. When
// `renormalize`, the chosen weights are divided by their sum (Mixtral always; Qwen/OLMoE when
// norm_topk_prob).
//   logits: (T, E) f32;  ids: (T, top_k) expert indices;  weights: (T, top_k) f32
void softmax_topk(const float* logits, int64_t T, int64_t E, int64_t top_k, bool renormalize, int32_t* ids,
                  float* weights);

}  // namespace moe::cpu
