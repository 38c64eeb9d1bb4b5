// Causal grouped-query attention over a KV cache; contract in attention.h.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

namespace moe::cpu {
namespace {

// Independent partial sums per q.k dot (vectorisable without -ffast-math).
constexpr int64_t kLanes = 8;
// Below this many multiply-adds (about T * n_heads * keys * head_dim) stay on one thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 15;

float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int64_t width = kLanes / 2; width > 0; width /= 2)
    for (int64_t j = 0; j < width; ++j) acc[j] += acc[j + width];
  return acc[0] + tail;
}

}  // namespace

void attention(const float* q, int64_t T, int64_t pos0, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               const float* k_cache, const float* v_cache, int64_t capacity, int64_t window, float scale, float* out) {
  assert(n_kv_heads > 0 && n_heads % n_kv_heads == 0);
  assert(pos0 + T <= capacity);
  const int64_t group = n_heads / n_kv_heads;
  const int64_t max_keys = pos0 + T;
  const bool parallel = T * n_heads * max_keys * head_dim >= kMinParallelWork;
#pragma omp parallel if (parallel)
  {
    std::vector<float> probs(static_cast<size_t>(max_keys));  // per-thread score row
#pragma omp for collapse(2) schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < n_heads; ++h) {
        const int64_t pos = pos0 + t;
        // Visible keys: first .. pos (window > 0: exactly `window` keys ending at pos).
        const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
        const int64_t n_keys = pos - first + 1;
        const float* qv = q + (t * n_heads + h) * head_dim;
        const int64_t kv = h / group;
        const float* keys = k_cache + (kv * capacity + first) * head_dim;
        const float* values = v_cache + (kv * capacity + first) * head_dim;

        float max_score = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < n_keys; ++j) {
          const float s = dot(qv, keys + j * head_dim, head_dim) * scale;
          probs[static_cast<size_t>(j)] = s;
          max_score = std::max(max_score, s);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float e = std::exp(probs[static_cast<size_t>(j)] - max_score);
          probs[static_cast<size_t>(j)] = e;
          sum += e;
        }
        for (int64_t j = 0; j < n_keys; ++j) probs[static_cast<size_t>(j)] /= sum;

        float* o = out + (t * n_heads + h) * head_dim;
        std::fill(o, o + head_dim, 0.0f);
        for (int64_t j = 0; j < n_keys; ++j) {
          const float p = probs[static_cast<size_t>(j)];
          const float* v = values + j * head_dim;
          for (int64_t i = 0; i < head_dim; ++i) o[i] += p * v[i];
        }
      }
    }
  }
}

}  // namespace moe::cpu
