// Residual add x += y, and the gated add of Qwen2-MoE's shared expert,
// acc[t, :] += sigmoid(gate_logit[t]) * x[t, :]. Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

void add_inplace(float* x, const float* y, int64_t n, cudaStream_t stream);
void add_sigmoid_gated(const float* x, const float* gate_logit, int64_t T, int64_t width, float* acc,
                       cudaStream_t stream);

}  // namespace moe::cuda
