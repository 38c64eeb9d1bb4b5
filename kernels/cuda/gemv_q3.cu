// The q3 instantiations of the decode matrix-vector kernels (gemv_impl.cuh).
#include <stdexcept>
#include <string>

#include "kernels/cuda/gemv_impl.cuh"

namespace moe::cuda::gemv_detail {

template <>
void launch_qgemv<QFormat::kQ3>(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y,
                                cudaStream_t s) {
  launch_qgemv_impl<QFormat::kQ3>(x, T, w, bias, y, s);
}

template <>
void launch_qgemv_swiglu<QFormat::kQ3>(const float* x, int T, const WeightOperand& gate, const WeightOperand& up,
                                       float* h, cudaStream_t s) {
  launch_qgemv_swiglu_impl<QFormat::kQ3>(x, T, gate, up, h, s);
}

}  // namespace moe::cuda::gemv_detail
