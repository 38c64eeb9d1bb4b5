// Matrix-vector products for decode (a few token rows): y (T, N) = x (T, K) w^T + bias over
// every weight kind (f32, f16, bf16 and the quantized formats in the device layout), and the
// fused SwiGLU gate/up product of one expert. Weight bytes are read once for all T <= 4 rows.
//
// Design: one warp per weight row, four rows per 128-thread block. A lane walks the row's code
// bytes in 16-byte chunks (128-bit loads when the row is 16-byte aligned, narrower otherwise),
// unpacks codes to floats exactly (byte_perm into the mantissa of 2^23, minus 2^23), multiplies
// (code - zero) with x in f32 and applies the block's scale per block; lanes are reduced with
// shuffles. f32 accumulation throughout; no x quantization.
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/operand.cuh"

namespace moe::cuda {

constexpr int kGemvMaxTokens = 4;

// y (T, N) = x (T, K) w^T (+ bias). T in 1..kGemvMaxTokens; x and y f32 in device memory.
void gemv(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, cudaStream_t stream);

// h (T, I) = silu(x gate^T) * (x up^T); gate and up (I, H) of the same kind. T in 1..kGemvMaxTokens.
void gemv_swiglu(const float* x, int T, const WeightOperand& gate, const WeightOperand& up, float* h,
                 cudaStream_t stream);

}  // namespace moe::cuda
