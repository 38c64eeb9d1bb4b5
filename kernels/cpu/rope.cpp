// Rotary position embedding, rotate-half layout; contract in rope.h.
#include "kernels/cpu/rope.h"

#include <cassert>
#include <cmath>
#include <vector>

#include "kernels/common/thread_pool.h"

namespace moe::cpu {
namespace {
// Below this many elements (T * n_heads * head_dim) the call stays on the calling thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 16;
}  // namespace

void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int64_t* positions, float theta) {
  assert(head_dim % 2 == 0);
  const int64_t half = head_dim / 2;
  // inv_freq[i] = 1 / theta^(2i/d), every step in f32 as transformers computes it.
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(theta, exponent);
  }
  parallel_for(T, T * n_heads * head_dim >= kMinParallelWork, [&](int64_t begin, int64_t end) {
    std::vector<float> cos_a(static_cast<size_t>(half));
    std::vector<float> sin_a(static_cast<size_t>(half));
    for (int64_t t = begin; t < end; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        const float a = pos * inv_freq[static_cast<size_t>(i)];
        cos_a[static_cast<size_t>(i)] = std::cos(a);
        sin_a[static_cast<size_t>(i)] = std::sin(a);
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cos_a[static_cast<size_t>(i)];
          const float s = sin_a[static_cast<size_t>(i)];
          const float x1 = v[i];
          const float x2 = v[i + half];
          v[i] = x1 * c - x2 * s;
          v[i + half] = x2 * c + x1 * s;
        }
      }
    }
  });
}

}  // namespace moe::cpu
