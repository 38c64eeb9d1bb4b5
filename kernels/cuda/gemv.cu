// Dispatch of gemv.cuh, and the unquantized (f32, f16, bf16) instantiations.
#include <stdexcept>
#include <string>

#include "kernels/cuda/gemv_impl.cuh"

namespace moe::cuda {
namespace gd = gemv_detail;

namespace {

template <Elem E>
void launch_dense(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, cudaStream_t s) {
  if (T == 1)
    MOE_CUDA_LAUNCH((gd::dgemv_kernel<E, 1>), gd::gemv_blocks(w.n), gd::kThreads, 0, s, w.data, w.n, w.k,
                    gd::make_xrows<1>(x, w.k, T), bias, y);
  else
    MOE_CUDA_LAUNCH((gd::dgemv_kernel<E, kGemvMaxTokens>), gd::gemv_blocks(w.n), gd::kThreads, 0, s, w.data, w.n, w.k,
                    gd::make_xrows<kGemvMaxTokens>(x, w.k, T), bias, y);
}

template <Elem E>
void launch_dense_swiglu(const float* x, int T, const WeightOperand& gate, const WeightOperand& up, float* h,
                         cudaStream_t s) {
  if (T == 1)
    MOE_CUDA_LAUNCH((gd::dgemv_swiglu_kernel<E, 1>), gd::gemv_blocks(gate.n), gd::kThreads, 0, s, gate.data, up.data,
                    gate.n, gate.k, gd::make_xrows<1>(x, gate.k, T), h);
  else
    MOE_CUDA_LAUNCH((gd::dgemv_swiglu_kernel<E, kGemvMaxTokens>), gd::gemv_blocks(gate.n), gd::kThreads, 0, s,
                    gate.data, up.data, gate.n, gate.k, gd::make_xrows<kGemvMaxTokens>(x, gate.k, T), h);
}

void check_tokens(int T, const char* op) {
  if (T < 1 || T > kGemvMaxTokens)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(T) + " token rows, expected 1.." +
                                std::to_string(kGemvMaxTokens));
}

}  // namespace

void gemv(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, cudaStream_t s) {
  check_tokens(T, "gemv");
  if (w.n == 0) return;
  switch (w.q) {
    case QFormat::kQ8: gd::launch_qgemv<QFormat::kQ8>(x, T, w, bias, y, s); return;
    case QFormat::kQ4: gd::launch_qgemv<QFormat::kQ4>(x, T, w, bias, y, s); return;
    case QFormat::kQ3: gd::launch_qgemv<QFormat::kQ3>(x, T, w, bias, y, s); return;
    case QFormat::kQ2: gd::launch_qgemv<QFormat::kQ2>(x, T, w, bias, y, s); return;
    case QFormat::kNone: break;
  }
  switch (w.elem) {
    case Elem::kF32: launch_dense<Elem::kF32>(x, T, w, bias, y, s); return;
    case Elem::kF16: launch_dense<Elem::kF16>(x, T, w, bias, y, s); return;
    case Elem::kBF16: launch_dense<Elem::kBF16>(x, T, w, bias, y, s); return;
  }
}

void gemv_swiglu(const float* x, int T, const WeightOperand& gate, const WeightOperand& up, float* h, cudaStream_t s) {
  check_tokens(T, "gemv_swiglu");
  if (gate.q != up.q || gate.group != up.group || gate.elem != up.elem || gate.n != up.n || gate.k != up.k)
    throw std::invalid_argument("gemv_swiglu: gate and up must have the same shape and storage");
  if (gate.n == 0) return;
  switch (gate.q) {
    case QFormat::kQ8: gd::launch_qgemv_swiglu<QFormat::kQ8>(x, T, gate, up, h, s); return;
    case QFormat::kQ4: gd::launch_qgemv_swiglu<QFormat::kQ4>(x, T, gate, up, h, s); return;
    case QFormat::kQ3: gd::launch_qgemv_swiglu<QFormat::kQ3>(x, T, gate, up, h, s); return;
    case QFormat::kQ2: gd::launch_qgemv_swiglu<QFormat::kQ2>(x, T, gate, up, h, s); return;
    case QFormat::kNone: break;
  }
  switch (gate.elem) {
    case Elem::kF32: launch_dense_swiglu<Elem::kF32>(x, T, gate, up, h, s); return;
    case Elem::kF16: launch_dense_swiglu<Elem::kF16>(x, T, gate, up, h, s); return;
    case Elem::kBF16: launch_dense_swiglu<Elem::kBF16>(x, T, gate, up, h, s); return;
  }
}

}  // namespace moe::cuda
