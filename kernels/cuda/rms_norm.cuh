// Row-wise RMSNorm in f32: y = x * rsqrt(mean(x^2) + eps) * w, x viewed as (rows, D). Also the
// q/k norm: D = head_dim normalises per head (Qwen3), D = the full width over the whole
// projection (OLMoE). y may alias x. Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/operand.cuh"

namespace moe::cuda {

void rms_norm(const float* x, int64_t rows, int64_t D, const void* w, Elem w_elem, float eps, float* y,
              cudaStream_t stream);

}  // namespace moe::cuda
