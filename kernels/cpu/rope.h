// Rotary position embedding in the "rotate half" layout used by Hugging Face Llama-family
// models (Mixtral, Qwen2/3-MoE, OLMoE): element i pairs with element i + head_dim / 2.
#pragma once

#include <cstdint>

namespace moe::cpu {

// In place on x: (T, n_heads, head_dim) f32. Token t has position positions[t].
// With d = head_dim, i < d/2, inv_freq[i] = 1 / theta^(2i/d) and a = positions[t] * inv_freq[i]
// (all in f32, as transformers computes them):
//   x'[i]       = x[i] * cos(a) - x[i + d/2] * sin(a)
//   x'[i + d/2] = x[i + d/2] * cos(a) + x[i] * sin(a)
void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int64_t* positions, float theta);

}  // namespace moe::cpu
