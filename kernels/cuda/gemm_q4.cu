// The q4 instantiations of the prefill matrix-matrix kernel (gemm_impl.cuh).
#include "kernels/cuda/gemm_impl.cuh"

namespace moe::cuda::gemm_detail {

template <>
void launch_qgemm<QFormat::kQ4>(const float* x, int T, const WeightOperand& w, const BiasOperand& bias,
                                const float* xsum, float* y, bool silu_mul, cudaStream_t s) {
  launch_qgemm_impl<QFormat::kQ4>(x, T, w, bias, xsum, y, silu_mul, s);
}

}  // namespace moe::cuda::gemm_detail
