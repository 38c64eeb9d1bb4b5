#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/qlayout.cuh"
#include "kernels/cuda/rms_norm.cuh"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;

template <Elem E>
__device__ __forceinline__ float weight_at(const void* w, int64_t i) {
  if constexpr (E == Elem::kF32) return static_cast<const float*>(w)[i];
  if constexpr (E == Elem::kF16) return __half2float(static_cast<const __half*>(w)[i]);
  if constexpr (E == Elem::kBF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(w)[i]);
  return 0.0f;
}

// One block per row (small D: one warp per row would waste less, but D >= 64 in practice).
template <Elem E>
__global__ void __launch_bounds__(kThreads)
    rms_norm_kernel(const float* x, int64_t D, const void* __restrict__ w, float eps, float* y) {
  __shared__ float partial[kThreads / 32];
  const float* xr = x + blockIdx.x * D;
  float* yr = y + blockIdx.x * D;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += kThreads) ss = fmaf(xr[i], xr[i], ss);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int i = 0; i < kThreads / 32; ++i) total += partial[i];
  const float inv = 1.0f / sqrtf(total / static_cast<float>(D) + eps);
  // Each element is read before it is written by the same thread: y may alias x.
  for (int64_t i = threadIdx.x; i < D; i += kThreads) yr[i] = xr[i] * inv * weight_at<E>(w, i);
}

}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t D, const void* w, Elem e, float eps, float* y, cudaStream_t s) {
  if (rows <= 0) return;
  const auto grid = static_cast<unsigned>(rows);
  switch (e) {
    case Elem::kF32: MOE_CUDA_LAUNCH(rms_norm_kernel<Elem::kF32>, grid, kThreads, 0, s, x, D, w, eps, y); return;
    case Elem::kF16: MOE_CUDA_LAUNCH(rms_norm_kernel<Elem::kF16>, grid, kThreads, 0, s, x, D, w, eps, y); return;
    case Elem::kBF16: MOE_CUDA_LAUNCH(rms_norm_kernel<Elem::kBF16>, grid, kThreads, 0, s, x, D, w, eps, y); return;
  }
}

}  // namespace moe::cuda
