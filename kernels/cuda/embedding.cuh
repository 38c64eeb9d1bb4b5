// out (T, D) = rows of a table (V, D) picked by ids (T), as f32. Tables: f32, f16, bf16, or a
// quantized device-layout table (dequantized (code - zero) * scale, as the CPU does).
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/operand.cuh"

namespace moe::cuda {

// ids: T int32 in device (or mapped pinned) memory, already range-checked by the caller.
void embedding(const int32_t* ids, int T, const WeightOperand& table, float* out, cudaStream_t stream);

}  // namespace moe::cuda
