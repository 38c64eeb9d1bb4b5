// Small element-wise ops of the forward pass.
#pragma once

#include <cstdint>

#include "kernels/common/dtype.h"

namespace moe::cpu {

// out[t, :] = table[ids[t], :] converted to f32. table: (vocab, D); ids already validated.
void embedding(const int32_t* ids, int64_t T, WeightRef table, int64_t D, float* out);

// out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)). out may alias gate or up.
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// acc[i] += s * x[i]
void add_scaled(float* acc, const float* x, float s, int64_t n);

// a[i] += b[i]
void add_inplace(float* a, const float* b, int64_t n);

// x[i] = min(max(x[i], lo), hi)
void clamp(float* x, int64_t n, float lo, float hi);

// 1 / (1 + exp(-x))
float sigmoid(float x);

}  // namespace moe::cpu
