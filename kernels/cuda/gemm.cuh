// Matrix-matrix products for prefill (more than kGemvMaxTokens token rows) on the tensor cores:
// y (T, N) = x (T, K) w^T + bias, over f32/f16/bf16 and every quantized format.
//
// Numerics: tensor cores multiply bf16, so x is split into three bf16 terms (24 significant
// bits, f32's precision), and so is the weight where bf16 does not hold it exactly (f16: two
// terms, f32: three); every product of terms down to 2^-16 relative is taken (x*w for bf16
// weights and codes: 3 MMAs; f16: 5; f32: 6).
// Quantized codes are small integers, exact in bf16: the tensor cores sum code * x per group
// (f32 accumulators), and each group is folded in as scale * (sum - zero * sum_of_x_over_group)
// in f32, the CPU kernels' formula. The result is f32-accurate, not bf16-accurate.
//
// Tiling: 64 x 64 output tiles, 4 warps of 32 x 32, k steps of 32 (mma.sync m16n8k16, sm_80+);
// weights are dequantized to codes into shared memory per tile, padded rows avoid bank conflicts.
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/operand.cuh"

namespace moe::cuda {

// Scratch floats gemm() needs for x (T, K) and weight w (group sums of x for quantized weights).
int64_t gemm_scratch_floats(int T, const WeightOperand& w);

// y (T, N) = x (T, K) w^T (+ bias); any T >= 1. scratch: gemm_scratch_floats(T, w) floats.
void gemm(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, float* scratch,
          cudaStream_t stream);

// y (T, N) = silu(x w^T) * y: the gate product of a SwiGLU MLP folded into the up product
// already in y.
void gemm_silu_mul(const float* x, int T, const WeightOperand& w, float* y, float* scratch, cudaStream_t stream);

}  // namespace moe::cuda
