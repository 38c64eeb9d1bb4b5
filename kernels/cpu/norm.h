// RMSNorm as the Llama family computes it in f32.
#pragma once

#include <cstdint>

#include "kernels/common/dtype.h"

namespace moe::cpu {

// For each of `rows` rows of width D:
//   y[r, :] = x[r, :] * (1 / sqrt(mean(x[r, :]^2) + eps)) * w[:]
// x, y: (rows, D) f32, y may alias x; w: (D) in w.dtype. Used for the layer norms, for
// per-head q/k norms (rows = T * heads, D = head_dim) and full-width q/k norms (OLMoE).
void rms_norm(const float* x, int64_t rows, int64_t D, WeightRef w, float eps, float* y);

}  // namespace moe::cpu
