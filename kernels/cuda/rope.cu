#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/rope.cuh"

namespace moe::cuda {
namespace {

// grid (T), threads over (head, i < half).
__global__ void rope_kernel(float* x, int n_heads, int head_dim, const int32_t* __restrict__ positions, float theta) {
  const int half = head_dim / 2;
  const int t = blockIdx.x;
  const float pos = static_cast<float>(positions[t]);
  for (int idx = threadIdx.x; idx < n_heads * half; idx += blockDim.x) {
    const int h = idx / half, i = idx % half;
    const float inv_freq = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
    const float a = pos * inv_freq;
    const float c = cosf(a), s = sinf(a);
    float* v = x + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
    const float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x2 * c + x1 * s;
  }
}

}  // namespace

void rope(float* x, int T, int n_heads, int head_dim, const int32_t* positions, float theta, cudaStream_t s) {
  if (T <= 0) return;
  MOE_CUDA_LAUNCH(rope_kernel, T, 256, 0, s, x, n_heads, head_dim, positions, theta);
}

}  // namespace moe::cuda
