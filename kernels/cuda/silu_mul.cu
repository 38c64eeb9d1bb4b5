#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace moe::cuda {
namespace {

__global__ void silu_mul_kernel(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

}  // namespace

void silu_mul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t s) {
  if (n <= 0) return;
  const int64_t b = (n + 255) / 256;
  MOE_CUDA_LAUNCH(silu_mul_kernel, static_cast<unsigned>(b < 4096 ? b : 4096), 256, 0, s, gate, up, n, out);
}

}  // namespace moe::cuda
