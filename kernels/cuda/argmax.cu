#include "kernels/cuda/argmax.cuh"
#include "kernels/cuda/cuda_check.cuh"

namespace moe::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ bool better(float v, int64_t i, float bv, int64_t bi) {
  return v > bv || (v == bv && i < bi) || (bv != bv && v == v);  // NaN never wins
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* __restrict__ x, int64_t n, int32_t* out) {
  __shared__ float sv[kThreads / 32];
  __shared__ int64_t si[kThreads / 32];
  float bv = -INFINITY;
  int64_t bi = n;
  for (int64_t i = threadIdx.x; i < n; i += kThreads)
    if (better(x[i], i, bv, bi)) bv = x[i], bi = i;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, off);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  if ((threadIdx.x & 31) == 0) sv[threadIdx.x >> 5] = bv, si[threadIdx.x >> 5] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w)
      if (better(sv[w], si[w], sv[0], si[0])) sv[0] = sv[w], si[0] = si[w];
    out[0] = static_cast<int32_t>(si[0] < n ? si[0] : 0);
  }
}

}  // namespace

void argmax(const float* logits, int64_t n, int32_t* out, cudaStream_t s) {
  MOE_CUDA_LAUNCH(argmax_kernel, 1, kThreads, 0, s, logits, n, out);
}

}  // namespace moe::cuda
