// KV-cache append: k, v (T, n_kv * head_dim) written into caches (n_kv, capacity, head_dim) at
// rows pos0 .. pos0 + T - 1. Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

void kv_append(const float* k, const float* v, int T, int n_kv, int head_dim, int64_t capacity, int64_t pos0,
               float* k_cache, float* v_cache, cudaStream_t stream);

}  // namespace moe::cuda
