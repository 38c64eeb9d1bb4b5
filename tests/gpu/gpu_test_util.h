// Helpers of the gpu tests: the CUDA backend (or a skip with "no CUDA device: skipped"), the CPU
// backend as the reference, random host data, uploads, downloads, and the comparison by
// normalised mean squared error (llama.cpp's test-backend-ops criterion) plus a NaN check.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"
#include "kernels/quant/quantize.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"

namespace moe::gpu_test {

// One CUDA backend for the whole test program (device set-up is slow), or null with the reason.
inline Backend* shared_cuda(std::string* why) {
  static std::string reason;
  static std::unique_ptr<Backend> b = [] {
    try {
      return make_backend("cuda", 0);
    } catch (const std::exception& e) {
      reason = e.what();
      return std::unique_ptr<Backend>{};
    }
  }();
  *why = reason;
  return b.get();
}

#define MOE_CUDA_OR_SKIP(var)                                                               \
  std::string moe_why_;                                                                     \
  ::moe::Backend* var##_ptr = ::moe::gpu_test::shared_cuda(&moe_why_);                      \
  if (var##_ptr == nullptr) GTEST_SKIP() << "no CUDA device: skipped (" << moe_why_ << ")"; \
  ::moe::Backend& var = *var##_ptr

inline CpuBackend& shared_cpu() {
  static CpuBackend cpu(0);
  return cpu;
}

inline std::mt19937& rng() {
  static std::mt19937 g(20240611u);
  return g;
}

// Fresh random values (never zeros): normal(0, scale).
inline std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) {
    x = d(rng());
    if (x == 0.0f) x = scale * 1e-3f;
  }
  return v;
}

// f32 values stored as `t` (bytes), and the values actually stored (rounded) in `rounded`.
inline std::vector<uint8_t> encode(const std::vector<float>& v, DType t, std::vector<float>* rounded = nullptr) {
  std::vector<uint8_t> out(v.size() * static_cast<size_t>(dtype_bits(t) / 8), uint8_t{0});
  if (rounded) rounded->resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    float r = v[i];
    if (t == DType::kF32) {
      std::memcpy(out.data() + 4 * i, &r, 4);
    } else {
      const uint16_t h = t == DType::kF16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
      r = t == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    if (rounded) (*rounded)[i] = r;
  }
  return out;
}

// A weight held in host memory (the CPU backend aliases it, the CUDA backend copies it).
struct HostWeight {
  std::vector<uint8_t> bytes;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::optional<QuantFormat> quant;
  TensorView view() const {
    TensorView v;
    v.name = "test";
    v.file = "test";
    v.dtype = dtype;
    v.shape = shape;
    v.data = bytes.data();
    v.nbytes = bytes.size();
    v.quant = quant;
    return v;
  }
};

inline HostWeight dense_weight(std::vector<int64_t> shape, DType t, float scale = 0.1f) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  HostWeight w;
  w.bytes = encode(randn(n, scale), t);
  w.dtype = t;
  w.shape = std::move(shape);
  return w;
}

inline HostWeight quant_weight(int64_t N, int64_t K, QuantFormat f, float scale = 0.1f) {
  const std::vector<float> v = randn(static_cast<size_t>(N * K), scale);
  HostWeight w;
  w.bytes.assign(quant_row_bytes(f, K) * static_cast<size_t>(N), uint8_t{0});
  QuantizeOptions o;
  o.quantizer = Quantizer::kRtn;
  quantize_rows(v.data(), N, K, f, o, w.bytes.data());
  w.dtype = DType::kU8;
  w.shape = {N, K};
  w.quant = f;
  return w;
}

inline Tensor upload(Backend& b, const std::vector<float>& v, std::initializer_list<int64_t> shape) {
  Tensor t = b.alloc(DType::kF32, shape);
  b.copy_from_host(v.data(), v.size() * sizeof(float), t);
  return t;
}

// A tensor of `shape` filled with NaN: outputs are poisoned before every op.
inline Tensor poisoned(Backend& b, std::initializer_list<int64_t> shape) {
  Tensor t = b.alloc(DType::kF32, shape);
  const std::vector<float> nan(static_cast<size_t>(t.numel()), std::nanf(""));
  b.copy_from_host(nan.data(), nan.size() * sizeof(float), t);
  return t;
}

inline std::vector<float> download(Backend& b, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  b.copy_to_host(t, v.data(), v.size() * sizeof(float));
  return v;
}

// Normalised mean squared error sum (a - b)^2 / sum b^2; infinite when a has a NaN.
inline double nmse(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(got[i]) != std::isnan(ref[i])) return INFINITY;
    if (std::isnan(ref[i])) continue;
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den == 0 ? num : num / den;
}

inline void expect_close(const std::vector<float>& got, const std::vector<float>& ref, double tol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  const double e = nmse(got, ref);
  size_t worst = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    if (std::fabs(got[i] - ref[i]) > std::fabs(got[worst] - ref[worst]) || std::isnan(got[i])) worst = i;
  EXPECT_LE(e, tol) << what << ": NMSE " << e << "; worst element " << worst << ": gpu " << got[worst] << ", cpu "
                    << ref[worst];
}

// Tolerance for f32 computations that differ only in summation order and libm ulps.
constexpr double kExactTol = 1e-9;
// For the tensor-core prefill products (x and weights split into bf16 terms: f32-level error).
constexpr double kTensorCoreTol = 1e-8;

}  // namespace moe::gpu_test
