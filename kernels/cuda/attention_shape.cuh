// The shape of one attention call over a KV cache, shared by the decode and prefill kernels.
// Host-only header.
#pragma once

#include <cstdint>

namespace moe::cuda {

// q (T, n_heads * head_dim) at positions pos0 .. pos0 + T - 1 attends causally to a cache
// (n_kv, capacity, head_dim) holding pos0 + T positions; window > 0: each query sees its last
// `window` keys. Grouped-query: head h reads KV head h / (n_heads / n_kv).
struct AttentionShape {
  int T = 0;
  int64_t pos0 = 0;
  int n_heads = 0, n_kv = 0, head_dim = 0;
  int64_t capacity = 0;
  int64_t window = 0;
  float scale = 1.0f;
};

constexpr int kAttentionMaxHeadDim = 256;

}  // namespace moe::cuda
