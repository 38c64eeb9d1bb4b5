// KV-cache append into a paged cache: k, v (T, n_kv * head_dim); row t goes to cache row
// slots[t] = block * block_size + offset of the caches (num_blocks, n_kv, block_size, head_dim),
// i.e. to (block, h, offset, :) for every kv head h. `slots` is device-readable memory.
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

void kv_append(const float* k, const float* v, int T, int n_kv, int head_dim, int block_size, const int32_t* slots,
               float* k_cache, float* v_cache, cudaStream_t stream);

}  // namespace moe::cuda
