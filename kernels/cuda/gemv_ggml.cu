// The ggml-type products of gemv_ggml.cuh: a warp per weight row over 32-weight units.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/gemv_impl.cuh"
#include "kernels/cuda/ggml_dequant.cuh"

namespace moe::cuda {
namespace {

using gemv_detail::XRows;

template <GgmlType T, int NT>
__global__ void __launch_bounds__(gemv_detail::kThreads)
    ggml_gemv_kernel(const uint8_t* __restrict__ w, int64_t N, int64_t K, XRows<NT> xr, BiasOperand bias,
                     float* __restrict__ y) {
  const int64_t n = gemv_detail::warp_row(N);
  if (n < 0) return;
  const int lane = threadIdx.x & 31;
  const int64_t rb = K / ggml::Block<T>::kElems * ggml::Block<T>::kBytes;
  float acc[NT];
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  ggml::row_dot<T, NT>(w + n * rb, K / ggml::kUnit, xr, lane, acc);
  const float b = bias.data != nullptr ? gemv_detail::load_elem(bias.data, bias.elem, n) : 0.0f;
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) {
    const float v = gemv_detail::warp_sum(acc[t]);
    if (lane == 0 && t < xr.T) y[t * N + n] = v + b;
  }
}

template <GgmlType T, int NT>
__global__ void __launch_bounds__(gemv_detail::kThreads)
    ggml_swiglu_kernel(const uint8_t* __restrict__ gate, const uint8_t* __restrict__ up, int64_t I, int64_t H,
                       XRows<NT> xr, float* __restrict__ h) {
  const int64_t n = gemv_detail::warp_row(I);
  if (n < 0) return;
  const int lane = threadIdx.x & 31;
  const int64_t rb = H / ggml::Block<T>::kElems * ggml::Block<T>::kBytes;
  float g[NT], u[NT];
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) g[t] = u[t] = 0.0f;
  ggml::row_dot<T, NT>(gate + n * rb, H / ggml::kUnit, xr, lane, g);
  ggml::row_dot<T, NT>(up + n * rb, H / ggml::kUnit, xr, lane, u);
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) {
    const float gv = gemv_detail::warp_sum(g[t]), uv = gemv_detail::warp_sum(u[t]);
    if (lane == 0 && t < xr.T) h[t * I + n] = gemv_detail::silu(gv) * uv;
  }
}

void check(const GgmlWeight& w, int T, const char* op) {
  if (T < 0) throw std::invalid_argument(std::string(op) + ": " + std::to_string(T) + " token rows");
  if (w.k % ggml_block_elems(w.type) != 0)
    throw std::invalid_argument(std::string(op) + ": row length " + std::to_string(w.k) +
                                " is not a multiple of the block length " + std::to_string(ggml_block_elems(w.type)));
}

}  // namespace

void ggml_linear(const float* x, int T, const GgmlWeight& w, const BiasOperand& bias, float* y, cudaStream_t s) {
  check(w, T, "ggml_linear");
  if (w.n == 0 || T == 0) return;
  const auto* wp = static_cast<const uint8_t*>(w.data);
  ggml::with_type(w.type, [&](auto tc) {
    constexpr GgmlType G = decltype(tc)::value;
    if (T == 1) {
      MOE_CUDA_LAUNCH((ggml_gemv_kernel<G, 1>), gemv_detail::gemv_blocks(w.n), gemv_detail::kThreads, 0, s, wp, w.n,
                      w.k, gemv_detail::make_xrows<1>(x, w.k, 1), bias, y);
      return;
    }
    for (int t0 = 0; t0 < T; t0 += kGgmlGemvMaxTokens) {
      const int nt = std::min(kGgmlGemvMaxTokens, T - t0);
      MOE_CUDA_LAUNCH((ggml_gemv_kernel<G, kGgmlGemvMaxTokens>), gemv_detail::gemv_blocks(w.n), gemv_detail::kThreads,
                      0, s, wp, w.n, w.k, gemv_detail::make_xrows<kGgmlGemvMaxTokens>(x + t0 * w.k, w.k, nt), bias,
                      y + t0 * w.n);
    }
  });
}

void ggml_swiglu(const float* x, int T, const GgmlWeight& gate, const GgmlWeight& up, float* h, cudaStream_t s) {
  check(gate, T, "ggml_swiglu");
  if (gate.type != up.type || gate.n != up.n || gate.k != up.k)
    throw std::invalid_argument("ggml_swiglu: gate and up must have the same shape and ggml type");
  if (gate.n == 0 || T == 0) return;
  const auto* g = static_cast<const uint8_t*>(gate.data);
  const auto* u = static_cast<const uint8_t*>(up.data);
  ggml::with_type(gate.type, [&](auto tc) {
    constexpr GgmlType G = decltype(tc)::value;
    if (T == 1) {
      MOE_CUDA_LAUNCH((ggml_swiglu_kernel<G, 1>), gemv_detail::gemv_blocks(gate.n), gemv_detail::kThreads, 0, s, g, u,
                      gate.n, gate.k, gemv_detail::make_xrows<1>(x, gate.k, 1), h);
      return;
    }
    for (int t0 = 0; t0 < T; t0 += kGgmlGemvMaxTokens) {
      const int nt = std::min(kGgmlGemvMaxTokens, T - t0);
      MOE_CUDA_LAUNCH((ggml_swiglu_kernel<G, kGgmlGemvMaxTokens>), gemv_detail::gemv_blocks(gate.n),
                      gemv_detail::kThreads, 0, s, g, u, gate.n, gate.k,
                      gemv_detail::make_xrows<kGgmlGemvMaxTokens>(x + t0 * gate.k, gate.k, nt), h + t0 * gate.n);
    }
  });
}

}  // namespace moe::cuda
