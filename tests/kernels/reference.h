// Float64 scalar reference of every CPU kernel: the oracle the kernel tests compare against.
// Straightforward loops, double accumulation, no threads, no tricks. Weights are read through
// load_as_f32, i.e. exactly the rounded values the kernels see. Also holds the small helpers
// the tests share (random inputs, weight storage in each dtype, NaN poisoning).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/common/dtype.h"

namespace moe::ref {

// ---- Test support -----------------------------------------------------------------------

// n values ~ N(0, 1), never exactly zero.
inline std::vector<float> normal(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

// n values ~ U(lo, hi), never exactly zero.
inline std::vector<float> uniform(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

// Fills with NaN so that an element the kernel forgets to write fails the comparison.
inline void poison(std::vector<float>& v) {
  std::fill(v.begin(), v.end(), std::numeric_limits<float>::quiet_NaN());
}

// A weight tensor stored in `dtype`, built from f32 values rounded to that dtype.
struct Weights {
  DType dtype = DType::kF32;
  std::vector<float> f32;
  std::vector<uint16_t> half;  // F16 or BF16 bits

  Weights() = default;
  Weights(const std::vector<float>& values, DType t) : dtype(t) {
    if (t == DType::kF32) {
      f32 = values;
      return;
    }
    half.reserve(values.size());
    for (const float v : values) half.push_back(t == DType::kBF16 ? f32_to_bf16(v) : f32_to_f16(v));
  }
  WeightRef ref() const {
    return WeightRef{
        dtype == DType::kF32 ? static_cast<const void*>(f32.data()) : static_cast<const void*>(half.data()), dtype};
  }
  double at(int64_t i) const { return load_as_f32(ref().data, dtype, i); }
};

// ---- linear -----------------------------------------------------------------------------

// y[t, n] = sum_k x[t, k] w[n, k] + bias[n]; mag[t, n] = sum_k |x[t, k] w[n, k]| + |bias[n]|
// (the scale of the rounding error an f32 accumulation may make).
inline void linear(const float* x, int64_t T, int64_t K, WeightRef w, int64_t N, WeightRef bias, std::vector<double>& y,
                   std::vector<double>& mag) {
  y.assign(static_cast<size_t>(T * N), 0.0);
  mag.assign(static_cast<size_t>(T * N), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0.0, m = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double term = static_cast<double>(x[t * K + k]) * load_as_f32(w.data, w.dtype, n * K + k);
        s += term;
        m += std::fabs(term);
      }
      if (bias.data != nullptr) {
        const double b = load_as_f32(bias.data, bias.dtype, n);
        s += b;
        m += std::fabs(b);
      }
      y[static_cast<size_t>(t * N + n)] = s;
      mag[static_cast<size_t>(t * N + n)] = m;
    }
  }
}

// ---- rms_norm ---------------------------------------------------------------------------

inline std::vector<double> rms_norm(const float* x, int64_t rows, int64_t D, WeightRef w, float eps) {
  std::vector<double> y(static_cast<size_t>(rows * D));
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(x[r * D + i]) * x[r * D + i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(D) + static_cast<double>(eps));
    for (int64_t i = 0; i < D; ++i)
      y[static_cast<size_t>(r * D + i)] = x[r * D + i] * inv * load_as_f32(w.data, w.dtype, i);
  }
  return y;
}

// ---- rope -------------------------------------------------------------------------------

// The contract fixes inv_freq and the angle as f32 values (transformers computes them in f32,
// and at large positions that rounding is far larger than any other error), so they are formed
// in f32 here too; cos, sin and the rotation are then computed in double.
inline std::vector<double> rope(const float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int64_t* positions,
                                float theta) {
  const int64_t half = head_dim / 2;
  std::vector<double> y(static_cast<size_t>(T * n_heads * head_dim));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t base = (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
        const float inv_freq = 1.0f / std::pow(theta, exponent);
        const float angle = static_cast<float>(positions[t]) * inv_freq;
        const double c = std::cos(static_cast<double>(angle));
        const double s = std::sin(static_cast<double>(angle));
        const double x1 = x[base + i];
        const double x2 = x[base + i + half];
        y[static_cast<size_t>(base + i)] = x1 * c - x2 * s;
        y[static_cast<size_t>(base + i + half)] = x2 * c + x1 * s;
      }
    }
  }
  return y;
}

// ---- attention --------------------------------------------------------------------------

// out as in attention.h; tol_scale[(t, h)] = (1 + max_j scale * sum_i |q_i k_ji|) * max |v|
// over the visible keys: an f32 score error of eps * that first factor moves the output by
// about eps * tol_scale.
inline void attention(const float* q, int64_t T, int64_t pos0, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                      const float* k_cache, const float* v_cache, int64_t capacity, int64_t window, float scale,
                      std::vector<double>& out, std::vector<double>& tol_scale) {
  out.assign(static_cast<size_t>(T * n_heads * head_dim), 0.0);
  tol_scale.assign(static_cast<size_t>(T * n_heads), 0.0);
  const int64_t group = n_heads / n_kv_heads;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = pos0 + t;
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* qv = q + (t * n_heads + h) * head_dim;
      const int64_t kv = h / group;
      std::vector<int64_t> keys;
      for (int64_t j = 0; j <= pos; ++j)
        if (window <= 0 || j > pos - window) keys.push_back(j);
      std::vector<double> s(keys.size());
      double max_s = -std::numeric_limits<double>::infinity(), max_abs = 0.0, max_v = 0.0;
      for (size_t a = 0; a < keys.size(); ++a) {
        const float* kr = k_cache + (kv * capacity + keys[a]) * head_dim;
        const float* vr = v_cache + (kv * capacity + keys[a]) * head_dim;
        double d = 0.0, d_abs = 0.0;
        for (int64_t i = 0; i < head_dim; ++i) {
          d += static_cast<double>(qv[i]) * kr[i];
          d_abs += std::fabs(static_cast<double>(qv[i]) * kr[i]);
          max_v = std::max(max_v, std::fabs(static_cast<double>(vr[i])));
        }
        s[a] = d * scale;
        max_s = std::max(max_s, s[a]);
        max_abs = std::max(max_abs, d_abs * std::fabs(static_cast<double>(scale)));
      }
      double sum = 0.0;
      for (double& v : s) {
        v = std::exp(v - max_s);
        sum += v;
      }
      double* o = out.data() + (t * n_heads + h) * head_dim;
      for (size_t a = 0; a < keys.size(); ++a) {
        const float* vr = v_cache + (kv * capacity + keys[a]) * head_dim;
        for (int64_t i = 0; i < head_dim; ++i) o[i] += s[a] / sum * vr[i];
      }
      tol_scale[static_cast<size_t>(t * n_heads + h)] = (1.0 + max_abs) * max_v;
    }
  }
}

// ---- softmax_topk -----------------------------------------------------------------------

// Per token: softmax probabilities (double), then the top_k by (p descending, index ascending).
inline void softmax_topk(const float* logits, int64_t T, int64_t E, int64_t top_k, bool renormalize,
                         std::vector<int32_t>& ids, std::vector<double>& weights) {
  ids.assign(static_cast<size_t>(T * top_k), -1);
  weights.assign(static_cast<size_t>(T * top_k), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const float* l = logits + t * E;
    double max_l = -std::numeric_limits<double>::infinity();
    for (int64_t e = 0; e < E; ++e) max_l = std::max(max_l, static_cast<double>(l[e]));
    std::vector<double> p(static_cast<size_t>(E));
    double sum = 0.0;
    for (int64_t e = 0; e < E; ++e) {
      p[static_cast<size_t>(e)] = std::exp(static_cast<double>(l[e]) - max_l);
      sum += p[static_cast<size_t>(e)];
    }
    for (double& v : p) v /= sum;
    std::vector<bool> taken(static_cast<size_t>(E), false);
    double chosen = 0.0;
    for (int64_t k = 0; k < top_k; ++k) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e)  // strict '>' keeps the lowest index among equals
        if (!taken[static_cast<size_t>(e)] && (best < 0 || p[static_cast<size_t>(e)] > p[static_cast<size_t>(best)]))
          best = e;
      taken[static_cast<size_t>(best)] = true;
      ids[static_cast<size_t>(t * top_k + k)] = static_cast<int32_t>(best);
      weights[static_cast<size_t>(t * top_k + k)] = p[static_cast<size_t>(best)];
      chosen += p[static_cast<size_t>(best)];
    }
    if (renormalize)
      for (int64_t k = 0; k < top_k; ++k) weights[static_cast<size_t>(t * top_k + k)] /= chosen;
  }
}

// ---- element-wise -----------------------------------------------------------------------

inline double silu(double x) {
  return x / (1.0 + std::exp(-x));
}
inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

}  // namespace moe::ref
