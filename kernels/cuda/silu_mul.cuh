// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)); out may alias gate or up.
// The SwiGLU nonlinearity when gate and up come from separate products. Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

void silu_mul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);

}  // namespace moe::cuda
