#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/residual_add.cuh"

namespace moe::cuda {
namespace {

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void sigmoid_gated_kernel(const float* __restrict__ x, const float* __restrict__ g, int64_t width,
                                     float* __restrict__ acc) {
  const int64_t t = blockIdx.x;
  const float s = 1.0f / (1.0f + expf(-g[t]));
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) acc[t * width + i] += s * x[t * width + i];
}

unsigned grid_for(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 4096 ? b : 4096);
}

}  // namespace

void add_inplace(float* x, const float* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  MOE_CUDA_LAUNCH(add_kernel, grid_for(n), 256, 0, s, x, y, n);
}

void add_sigmoid_gated(const float* x, const float* g, int64_t T, int64_t width, float* acc, cudaStream_t s) {
  if (T <= 0) return;
  MOE_CUDA_LAUNCH(sigmoid_gated_kernel, static_cast<unsigned>(T), 256, 0, s, x, g, width, acc);
}

}  // namespace moe::cuda
