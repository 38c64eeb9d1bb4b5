#include "kernels/cuda/clamp.cuh"
#include "kernels/cuda/cuda_check.cuh"

namespace moe::cuda {
namespace {

__global__ void clamp_kernel(float* x, int64_t n, float lo, float hi) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = fminf(fmaxf(x[i], lo), hi);
}

}  // namespace

void clamp(float* x, int64_t n, float lo, float hi, cudaStream_t s) {
  if (n <= 0) return;
  const int64_t b = (n + 255) / 256;
  MOE_CUDA_LAUNCH(clamp_kernel, static_cast<unsigned>(b < 4096 ? b : 4096), 256, 0, s, x, n, lo, hi);
}

}  // namespace moe::cuda
