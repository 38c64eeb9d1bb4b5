// The projections of the CUDA backend against the CPU backend: unquantized f32/f16/bf16 and every
// quantized format and group size, decode (gemv, T <= 4) and prefill (tensor cores, T > 4), odd
// shapes, biases; and the SwiGLU MLP (fused gate/up for a few rows, grouped for many).
// The CPU's quantized kernels run their f32 path here (their int8 path for q8/q4 rounds x).
#include "gpu_test_util.h"
#include "kernels/cpu/qlinear_isa.h"

namespace moe {
namespace {

using namespace gpu_test;

class CudaLinear : public ::testing::Test {
 protected:
  void SetUp() override { previous_ = cpu::qlinear_set_float(true); }
  void TearDown() override { cpu::qlinear_set_float(previous_); }

 private:
  bool previous_ = false;
};

double tol_for(int64_t T) {
  return T > 4 ? kTensorCoreTol : kExactTol;
}

void check_linear(Backend& gpu, const HostWeight& w, int64_t T, const HostWeight* bias, const std::string& what) {
  CpuBackend& cpu = shared_cpu();
  const int64_t N = w.shape[0], K = w.shape[1];
  const std::vector<float> x = randn(static_cast<size_t>(T * K));
  std::vector<float> out[2];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    Tensor y = poisoned(b, {T, N});
    b.linear(upload(b, x, {T, K}), b.load_weight(w.view()), bias ? b.load_weight(bias->view()) : Tensor{}, y);
    out[i] = download(b, y);
  }
  expect_close(out[0], out[1], tol_for(T), str_cat(what, " N ", N, " K ", K, " T ", T, bias ? " +bias" : ""));
}

TEST_F(CudaLinear, Unquantized) {
  MOE_CUDA_OR_SKIP(gpu);
  struct Shape {
    int64_t N, K;
  };
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16})
    for (const Shape& s : {Shape{1, 16}, Shape{33, 64}, Shape{257, 96}, Shape{70, 101}, Shape{128, 4096}})
      for (int64_t T : {1, 2, 3, 4, 5, 16, 70, 130}) {
        const HostWeight w = dense_weight({s.N, s.K}, t);
        const HostWeight b = dense_weight({s.N}, t == DType::kF32 ? DType::kBF16 : t);
        check_linear(gpu, w, T, T % 2 ? &b : nullptr, str_cat("linear ", dtype_name(t)));
      }
}

TEST_F(CudaLinear, EveryQuantizedFormat) {
  MOE_CUDA_OR_SKIP(gpu);
  for (QuantType q : {QuantType::kQ8, QuantType::kQ4, QuantType::kQ3, QuantType::kQ2})
    for (int g : {16, 32, 64, 128, 256})
      for (int64_t blocks : {1, 3, 8})
        for (int64_t N : {1, 37, 300})
          for (int64_t T : {1, 3, 4, 5, 64}) {
            const QuantFormat f{q, g};
            const HostWeight w = quant_weight(N, blocks * g, f);
            const HostWeight b = dense_weight({N}, DType::kF32);
            check_linear(gpu, w, T, N == 37 ? &b : nullptr, "linear " + quant_format_name(f));
          }
}

TEST_F(CudaLinear, LargeShapes) {
  MOE_CUDA_OR_SKIP(gpu);
  for (QuantFormat f : {QuantFormat{QuantType::kQ4, 64}, QuantFormat{QuantType::kQ8, 128},
                        QuantFormat{QuantType::kQ2, 16}, QuantFormat{QuantType::kQ3, 64}})
    for (int64_t T : {1, 200}) check_linear(gpu, quant_weight(4096, 4096, f), T, nullptr, quant_format_name(f));
  check_linear(gpu, dense_weight({14336, 4096}, DType::kBF16), 1, nullptr, "bf16 large");
}

void check_mlp(Backend& gpu, const HostWeight& g, const HostWeight& u, const HostWeight& d, int64_t T,
               const std::string& what) {
  CpuBackend& cpu = shared_cpu();
  const int64_t H = g.shape[1];
  const std::vector<float> x = randn(static_cast<size_t>(T * H));
  std::vector<float> out[2];
  Backend* bs[2] = {&gpu, &cpu};
  for (int i = 0; i < 2; ++i) {
    Backend& b = *bs[i];
    const MlpWeights w{b.load_weight(g.view()), b.load_weight(u.view()), b.load_weight(d.view())};
    Tensor y = poisoned(b, {T, H});
    b.swiglu_mlp(upload(b, x, {T, H}), w, y);
    out[i] = download(b, y);
  }
  expect_close(out[0], out[1], tol_for(T) * 10, str_cat(what, " T ", T));
}

TEST_F(CudaLinear, SwigluMlpFusedAndGrouped) {
  MOE_CUDA_OR_SKIP(gpu);
  const int64_t H = 256, I = 384;
  for (int64_t T : {1, 2, 4, 5, 33}) {
    for (QuantFormat f : {QuantFormat{QuantType::kQ4, 64}, QuantFormat{QuantType::kQ2, 16},
                          QuantFormat{QuantType::kQ3, 32}, QuantFormat{QuantType::kQ8, 256}})
      check_mlp(gpu, quant_weight(I, H, f), quant_weight(I, H, f), quant_weight(H, I, f), T,
                "swiglu " + quant_format_name(f));
    for (DType t : {DType::kBF16, DType::kF16, DType::kF32})
      check_mlp(gpu, dense_weight({I, H}, t), dense_weight({I, H}, t), dense_weight({H, I}, t), T,
                str_cat("swiglu ", dtype_name(t)));
    // Gate and up stored differently: the unfused path.
    check_mlp(gpu, quant_weight(I, H, {QuantType::kQ4, 32}), quant_weight(I, H, {QuantType::kQ8, 64}),
              dense_weight({H, I}, DType::kBF16), T, "swiglu mixed");
  }
}

}  // namespace
}  // namespace moe
