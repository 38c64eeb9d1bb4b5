// Dense projection over stored weights: the matrix-vector (decode, T = 1) and matrix-matrix
// (prefill, T > 1) product that dominates the forward pass.
#pragma once

#include <cstdint>

#include "kernels/common/dtype.h"

namespace moe::cpu {

// y[t, n] = sum_k x[t, k] * w[n, k] + (bias.data ? bias[n] : 0)
//   x:    (T, K) f32, row-major
//   w:    (N, K) row-major, w.dtype in {F32, F16, BF16}
//   bias: (N) in bias.dtype, or bias.data == nullptr for none
//   y:    (T, N) f32; must not alias x
// Accumulates in f32. Multithreaded over n with OpenMP; each weight row is read once per
// call whatever T is (prefill reuses a converted row across all T tokens).
void linear(const float* x, int64_t T, int64_t K, WeightRef w, int64_t N, WeightRef bias, float* y);

}  // namespace moe::cpu
