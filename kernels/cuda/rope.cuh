// Rotary position embedding in place, rotate-half layout, as transformers computes it in f32:
// inv_freq[i] = 1 / theta^(2i / head_dim), angle = position * inv_freq[i]; row t of x
// (T, n_heads * head_dim) is at position positions[t] (device-readable memory). Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

void rope(float* x, int T, int n_heads, int head_dim, const int32_t* positions, float theta, cudaStream_t stream);

}  // namespace moe::cuda
