// Small element-wise ops; contracts in elementwise.h.
#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "kernels/common/thread_pool.h"

namespace moe::cpu {
namespace {
// Element counts below which an op stays on the calling thread: exp-bound ops pay for a
// parallel region sooner than pure memory ops.
constexpr int64_t kMinParallelExp = 4096;
constexpr int64_t kMinParallelMem = int64_t{1} << 15;
}  // namespace

void embedding(const int32_t* ids, int64_t T, WeightRef table, int64_t D, float* out) {
  assert(dtype_is_compute(table.dtype));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = static_cast<int64_t>(ids[t]) * D;
    float* o = out + t * D;
    switch (compute_type(table.dtype)) {
      case ComputeType::kF32:
        std::memcpy(o, static_cast<const float*>(table.data) + row, static_cast<size_t>(D) * sizeof(float));
        break;
      case ComputeType::kF16: {
        const uint16_t* src = static_cast<const uint16_t*>(table.data) + row;
        for (int64_t i = 0; i < D; ++i) o[i] = f16_to_f32(src[i]);
        break;
      }
      case ComputeType::kBF16: {
        const uint16_t* src = static_cast<const uint16_t*>(table.data) + row;
        for (int64_t i = 0; i < D; ++i) o[i] = bf16_to_f32(src[i]);
        break;
      }
    }
  }
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  // Element i reads gate[i] and up[i] before writing out[i]: out may alias either.
  parallel_for(n, n >= kMinParallelExp, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void add_scaled(float* acc, const float* x, float s, int64_t n) {
  parallel_for(n, n >= kMinParallelMem, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) acc[i] += s * x[i];
  });
}

void add_inplace(float* a, const float* b, int64_t n) {
  parallel_for(n, n >= kMinParallelMem, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) a[i] += b[i];
  });
}

void clamp(float* x, int64_t n, float lo, float hi) {
  parallel_for(n, n >= kMinParallelMem, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) x[i] = std::min(std::max(x[i], lo), hi);
  });
}

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}

}  // namespace moe::cpu
