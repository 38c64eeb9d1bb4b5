// Causal grouped-query attention of T new queries over a KV cache.
#pragma once

#include <cstdint>

namespace moe::cpu {

// q:       (T, n_heads, head_dim) f32; query t sits at position pos0 + t
// k_cache: (n_kv_heads, capacity, head_dim) f32; rows 0 .. pos0 + T - 1 hold keys
// v_cache: same layout as k_cache
// out:     (T, n_heads, head_dim) f32; must not alias q
// Query at position p attends to keys j with j <= p and, when window > 0, j > p - window
// (exactly `window` keys including itself, the transformers sliding-window mask).
// Query head h reads kv head h / (n_heads / n_kv_heads). Scores are q.k * scale; softmax in
// f32 with the row maximum subtracted. Multithreaded over (t, head) with OpenMP.
void attention(const float* q, int64_t T, int64_t pos0, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               const float* k_cache, const float* v_cache, int64_t capacity, int64_t window, float scale, float* out);

}  // namespace moe::cpu
