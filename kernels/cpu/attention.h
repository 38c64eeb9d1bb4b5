// Causal grouped-query attention of T query rows over a paged KV cache.
#pragma once

#include <cstdint>

namespace moe::cpu {

// A paged KV cache: k, v (num_blocks, n_kv_heads, block_size, head_dim) f32. A sequence's
// position p lives in row p % block_size of block table[p / block_size] of that sequence.
struct PagedKv {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
};

// q:         (T, n_heads, head_dim) f32; row t is a query at position positions[t] of the
//            sequence whose block table starts at tables[t] (rows of one sequence share it)
// out:       (T, n_heads, head_dim) f32; must not alias q
// Query at position p attends to its sequence's keys j with j <= p and, when window > 0,
// j > p - window (exactly `window` keys including itself, the transformers sliding-window mask).
// Query head h reads kv head h / (n_heads / n_kv_heads). Scores are q.k * scale; softmax in f32
// with the row maximum subtracted. Multithreaded over (t, head) with OpenMP; a row's result does
// not depend on the other rows, on T or on the thread count.
void attention(const float* q, int64_t T, int64_t n_heads, const PagedKv& kv, const int32_t* positions,
               const int32_t* const* tables, int64_t window, float scale, float* out);

// The contiguous case: one sequence whose caches are (n_kv_heads, capacity, head_dim) (a single
// block of `capacity` rows); query t sits at position pos0 + t, and pos0 + T <= capacity.
void attention(const float* q, int64_t T, int64_t pos0, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               const float* k_cache, const float* v_cache, int64_t capacity, int64_t window, float scale, float* out);

}  // namespace moe::cpu
