// RMSNorm in f32; contract in norm.h.
#include "kernels/cpu/norm.h"

#include <cassert>
#include <cmath>

#include "kernels/common/thread_pool.h"

namespace moe::cpu {
namespace {

// Independent partial sums for the sum of squares (vectorisable without -ffast-math).
constexpr int64_t kLanes = 16;
// Below this many elements (rows * D) the call stays on the calling thread.
constexpr int64_t kMinParallelWork = 4096;

template <class Elem, float (*Load)(Elem)>
void norm_row(const float* x, int64_t D, const Elem* w, float eps, float* y) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= D; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += x[i + j] * x[i + j];
  float tail = 0.0f;
  for (; i < D; ++i) tail += x[i] * x[i];
  for (int64_t width = kLanes / 2; width > 0; width /= 2)
    for (int64_t j = 0; j < width; ++j) acc[j] += acc[j + width];
  const float mean = (acc[0] + tail) / static_cast<float>(D);
  const float inv = 1.0f / std::sqrt(mean + eps);
  // x is read before y is written at each i, so y may alias x.
  for (int64_t k = 0; k < D; ++k) y[k] = x[k] * inv * Load(w[k]);
}

float load_f32(float v) {
  return v;
}

void norm_one(const float* x, int64_t D, WeightRef w, float eps, float* y) {
  switch (compute_type(w.dtype)) {
    case ComputeType::kF32: norm_row<float, load_f32>(x, D, static_cast<const float*>(w.data), eps, y); return;
    case ComputeType::kF16: norm_row<uint16_t, f16_to_f32>(x, D, static_cast<const uint16_t*>(w.data), eps, y); return;
    case ComputeType::kBF16:
      norm_row<uint16_t, bf16_to_f32>(x, D, static_cast<const uint16_t*>(w.data), eps, y);
      return;
  }
}

}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t D, WeightRef w, float eps, float* y) {
  assert(D > 0);
  parallel_for(rows, rows > 1 && rows * D >= kMinParallelWork, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) norm_one(x + r * D, D, w, eps, y + r * D);
  });
}

}  // namespace moe::cpu
