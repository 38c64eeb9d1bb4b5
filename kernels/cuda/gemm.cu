// Dispatch of gemm.cuh, the group sums of x, and the unquantized instantiations.
#include "kernels/cuda/gemm_impl.cuh"

namespace moe::cuda {
namespace gd = gemm_detail;

namespace {

// xs[t * nb + b] = sum of x[t, b*G .. b*G + G), left to right in f32.
__global__ void group_sums_kernel(const float* __restrict__ x, int T, int64_t K, int G, float* __restrict__ xs) {
  const int64_t nb = K / G;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * nb) return;
  const float* p = x + (i / nb) * K + (i % nb) * G;
  float s = 0.0f;
  for (int j = 0; j < G; ++j) s += p[j];
  xs[i] = s;
}

template <Elem E>
void launch_dense(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, bool silu_mul,
                  cudaStream_t s) {
  if (silu_mul)
    MOE_CUDA_LAUNCH((gd::gemm_kernel<QFormat::kNone, 16, E, gd::Epilogue::kSiluMul>), gd::gemm_grid(T, w.n),
                    gd::kThreads, 0, s, x, T, w.k, w.data, w.n, bias, nullptr, y);
  else
    MOE_CUDA_LAUNCH((gd::gemm_kernel<QFormat::kNone, 16, E, gd::Epilogue::kStore>), gd::gemm_grid(T, w.n), gd::kThreads,
                    0, s, x, T, w.k, w.data, w.n, bias, nullptr, y);
}

void run(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, float* scratch,
         bool silu_mul, cudaStream_t s) {
  if (T <= 0 || w.n == 0) return;
  if (w.q != QFormat::kNone) {
    const int64_t n = T * (w.k / w.group);
    if (n > 0)
      MOE_CUDA_LAUNCH(group_sums_kernel, static_cast<unsigned>((n + 255) / 256), 256, 0, s, x, T, w.k, w.group,
                      scratch);
  }
  switch (w.q) {
    case QFormat::kQ8: gd::launch_qgemm<QFormat::kQ8>(x, T, w, bias, scratch, y, silu_mul, s); return;
    case QFormat::kQ4: gd::launch_qgemm<QFormat::kQ4>(x, T, w, bias, scratch, y, silu_mul, s); return;
    case QFormat::kQ3: gd::launch_qgemm<QFormat::kQ3>(x, T, w, bias, scratch, y, silu_mul, s); return;
    case QFormat::kQ2: gd::launch_qgemm<QFormat::kQ2>(x, T, w, bias, scratch, y, silu_mul, s); return;
    case QFormat::kNone: break;
  }
  switch (w.elem) {
    case Elem::kF32: launch_dense<Elem::kF32>(x, T, w, bias, y, silu_mul, s); return;
    case Elem::kF16: launch_dense<Elem::kF16>(x, T, w, bias, y, silu_mul, s); return;
    case Elem::kBF16: launch_dense<Elem::kBF16>(x, T, w, bias, y, silu_mul, s); return;
  }
}

}  // namespace

int64_t gemm_scratch_floats(int T, const WeightOperand& w) {
  return w.q == QFormat::kNone ? 0 : static_cast<int64_t>(T) * (w.k / w.group);
}

void gemm(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, float* scratch,
          cudaStream_t s) {
  run(x, T, w, bias, y, scratch, false, s);
}

void gemm_silu_mul(const float* x, int T, const WeightOperand& w, float* y, float* scratch, cudaStream_t s) {
  run(x, T, w, BiasOperand{}, y, scratch, true, s);
}

}  // namespace moe::cuda
