// The CUDA products over ggml's block formats (kernels/cuda/gemv_ggml.cuh) against the CPU scalar
// reference: every ggml type, random blocks (random bytes, finite f16 scales), weights uploaded in
// their stored layout, y = x W^T (+ bias) compared with ggml_dequantize_row and a double dot, for
// T = 1, 4 and 5 token rows (one launch of the 1-row kernel, one of the 4-row kernel, and 4 + 1);
// and the SwiGLU MLP with ggml gate/up (fused) and mixed storage; the embedding from a ggml table.
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "gpu_test_util.h"
#include "kernels/quant/ggml_quants.h"

namespace moe {
namespace {

using namespace gpu_test;

constexpr QuantType kGgmlTypes[] = {QuantType::kGgmlQ4_0, QuantType::kGgmlQ4_1,  QuantType::kGgmlQ5_0,
                                    QuantType::kGgmlQ5_1, QuantType::kGgmlQ8_0,  QuantType::kGgmlQ2_K,
                                    QuantType::kGgmlQ3_K, QuantType::kGgmlQ4_K,  QuantType::kGgmlQ5_K,
                                    QuantType::kGgmlQ6_K, QuantType::kGgmlIQ4_XS};

// Byte offsets of a block's f16 scale fields (ggml-common.h); -1: none.
std::array<int, 2> f16_fields(QuantType t) {
  switch (t) {
    case QuantType::kGgmlQ4_1:
    case QuantType::kGgmlQ5_1:
    case QuantType::kGgmlQ4_K:
    case QuantType::kGgmlQ5_K: return {0, 2};
    case QuantType::kGgmlQ2_K: return {80, 82};
    case QuantType::kGgmlQ3_K: return {108, -1};
    case QuantType::kGgmlQ6_K: return {208, -1};
    case QuantType::kGgmlQ4_0:
    case QuantType::kGgmlQ5_0:
    case QuantType::kGgmlQ8_0:
    case QuantType::kGgmlIQ4_XS:
    case QuantType::kQ8:
    case QuantType::kQ4:
    case QuantType::kQ3:
    case QuantType::kQ2: break;
  }
  return {0, -1};
}

// A ggml-typed weight (N, K) of random blocks, and its values as the CPU reference reads them.
struct GgmlHostWeight {
  HostWeight w;
  std::vector<float> values;  // (N, K)
};

GgmlHostWeight ggml_weight(int64_t N, int64_t K, QuantType t) {
  const GgmlBlock blk = ggml_block(t);
  const QuantFormat f{t, blk.elems};
  GgmlHostWeight g;
  g.w.bytes.resize(quant_row_bytes(f, K) * static_cast<size_t>(N));
  for (uint8_t& b : g.w.bytes) b = static_cast<uint8_t>(rng()() & 0xFFu);
  // Scales small enough that sums over K stay well inside f32, never NaN or infinite.
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  const size_t blocks = g.w.bytes.size() / static_cast<size_t>(blk.bytes);
  for (size_t b = 0; b < blocks; ++b)
    for (int o : f16_fields(t)) {
      if (o < 0) continue;
      const uint16_t h = f32_to_f16(u(rng()));
      std::memcpy(g.w.bytes.data() + b * static_cast<size_t>(blk.bytes) + o, &h, 2);
    }
  g.w.dtype = DType::kU8;
  g.w.shape = {N, K};
  g.w.quant = f;
  g.values.resize(static_cast<size_t>(N * K));
  ggml_dequantize_row(t, g.w.bytes.data(), N * K, g.values.data());
  return g;
}

// y (T, N) = x (T, K) w^T (+ bias) in double.
std::vector<float> reference(const std::vector<float>& x, int64_t T, const std::vector<float>& w, int64_t N, int64_t K,
                             const std::vector<float>* bias) {
  std::vector<float> y(static_cast<size_t>(T * N));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double s = bias ? (*bias)[static_cast<size_t>(n)] : 0.0;
      for (int64_t k = 0; k < K; ++k)
        s += static_cast<double>(x[static_cast<size_t>(t * K + k)]) * w[static_cast<size_t>(n * K + k)];
      y[static_cast<size_t>(t * N + n)] = static_cast<float>(s);
    }
  return y;
}

TEST(CudaGgmlLinear, EveryTypeMatchesTheScalarReference) {
  MOE_CUDA_OR_SKIP(gpu);
  for (QuantType t : kGgmlTypes) {
    const int64_t block = ggml_block(t).elems;
    for (int64_t blocks : {1, 3, 8})
      for (int64_t N : {1, 37, 300}) {
        const int64_t K = blocks * block;
        const GgmlHostWeight g = ggml_weight(N, K, t);
        const HostWeight b = dense_weight({N}, DType::kF32);
        std::vector<float> bias(static_cast<size_t>(N));
        std::memcpy(bias.data(), b.bytes.data(), bias.size() * sizeof(float));
        const Tensor w = gpu.load_weight(g.w.view());
        const Tensor bt = gpu.load_weight(b.view());
        for (int64_t T : {1, 4, 5}) {
          const bool with_bias = N == 37;
          const std::vector<float> x = randn(static_cast<size_t>(T * K));
          Tensor y = poisoned(gpu, {T, N});
          gpu.linear(upload(gpu, x, {T, K}), w, with_bias ? bt : Tensor{}, y);
          expect_close(download(gpu, y), reference(x, T, g.values, N, K, with_bias ? &bias : nullptr), kExactTol,
                       str_cat("linear ", quant_format_name(*g.w.quant), " N ", N, " K ", K, " T ", T,
                               with_bias ? " +bias" : ""));
        }
      }
  }
}

// A GGUF token_embd kept in its block type: the rows ids pick, dequantized exactly as the CPU
// reference does (ggml_dequant.cuh is bit-exact with ggml_dequantize_row: tolerance 0).
TEST(CudaGgmlLinear, EmbeddingEveryType) {
  MOE_CUDA_OR_SKIP(gpu);
  for (QuantType t : kGgmlTypes) {
    const int64_t V = 50, D = 2 * ggml_block(t).elems;
    const GgmlHostWeight g = ggml_weight(V, D, t);
    const Tensor table = gpu.load_weight(g.w.view());
    const std::vector<int32_t> ids = {7, 0, 49, 7, 23};
    const auto T = static_cast<int64_t>(ids.size());
    Tensor id = gpu.alloc(DType::kI32, {T});
    gpu.copy_from_host(ids.data(), ids.size() * sizeof(int32_t), id);
    Tensor o = poisoned(gpu, {T, D});
    gpu.embedding(id, table, o);
    std::vector<float> want(static_cast<size_t>(T * D));
    for (int64_t i = 0; i < T; ++i)
      std::memcpy(want.data() + i * D, g.values.data() + ids[static_cast<size_t>(i)] * D,
                  static_cast<size_t>(D) * sizeof(float));
    expect_close(download(gpu, o), want, 0.0, str_cat("embedding ", quant_format_name(*g.w.quant)));
  }
}

TEST(CudaGgmlLinear, LargeRows) {
  MOE_CUDA_OR_SKIP(gpu);
  for (QuantType t : {QuantType::kGgmlQ4_K, QuantType::kGgmlQ6_K, QuantType::kGgmlQ8_0})
    for (int64_t T : {1, 5}) {
      const int64_t N = 512, K = 4096;
      const GgmlHostWeight g = ggml_weight(N, K, t);
      const std::vector<float> x = randn(static_cast<size_t>(T * K));
      Tensor y = poisoned(gpu, {T, N});
      gpu.linear(upload(gpu, x, {T, K}), gpu.load_weight(g.w.view()), Tensor{}, y);
      expect_close(download(gpu, y), reference(x, T, g.values, N, K, nullptr), kExactTol,
                   str_cat("linear ", quant_format_name(*g.w.quant), " N ", N, " K ", K, " T ", T));
    }
}

// silu(x gate^T) * (x up^T) then down, in double from the reference values.
std::vector<float> mlp_reference(const std::vector<float>& x, int64_t T, const std::vector<float>& g,
                                 const std::vector<float>& u, const std::vector<float>& d, int64_t H, int64_t I) {
  const std::vector<float> gv = reference(x, T, g, I, H, nullptr), uv = reference(x, T, u, I, H, nullptr);
  std::vector<float> h(gv.size());
  for (size_t i = 0; i < h.size(); ++i) {
    const double a = gv[i];
    h[i] = static_cast<float>(a / (1.0 + std::exp(-a)) * uv[i]);
  }
  return reference(h, T, d, H, I, nullptr);
}

TEST(CudaGgmlLinear, SwigluMlp) {
  MOE_CUDA_OR_SKIP(gpu);
  const int64_t H = 512, I = 768;
  struct Case {
    QuantType gate, up, down;
  };
  for (const Case& c : {Case{QuantType::kGgmlQ4_K, QuantType::kGgmlQ4_K, QuantType::kGgmlQ6_K},     // fused
                        Case{QuantType::kGgmlQ8_0, QuantType::kGgmlQ8_0, QuantType::kGgmlQ8_0},     // fused
                        Case{QuantType::kGgmlQ4_K, QuantType::kGgmlQ5_K, QuantType::kGgmlIQ4_XS}})  // mixed
    for (int64_t T : {1, 5}) {
      const GgmlHostWeight g = ggml_weight(I, H, c.gate), u = ggml_weight(I, H, c.up), d = ggml_weight(H, I, c.down);
      MlpWeights w;
      w.gate = gpu.load_weight(g.w.view());
      w.up = gpu.load_weight(u.w.view());
      w.down = gpu.load_weight(d.w.view());
      const std::vector<float> x = randn(static_cast<size_t>(T * H));
      Tensor y = poisoned(gpu, {T, H});
      gpu.swiglu_mlp(upload(gpu, x, {T, H}), w, y);
      expect_close(download(gpu, y), mlp_reference(x, T, g.values, u.values, d.values, H, I), kExactTol,
                   str_cat("swiglu_mlp ", quant_format_name(*g.w.quant), "/", quant_format_name(*u.w.quant), "/",
                           quant_format_name(*d.w.quant), " T ", T));
    }
}

}  // namespace
}  // namespace moe
