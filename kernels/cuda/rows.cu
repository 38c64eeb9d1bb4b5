#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/rows.cuh"

namespace moe::cuda {
namespace {

__global__ void gather_kernel(const float* __restrict__ x, const int32_t* __restrict__ rows, int64_t width,
                              float* __restrict__ out) {
  const int64_t i = blockIdx.x;
  const int64_t src = rows[i];
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) out[i * width + c] = x[src * width + c];
}

__global__ void scatter_add_kernel(const float* __restrict__ x, const int32_t* __restrict__ rows,
                                   const float* __restrict__ scale, int64_t width, float* __restrict__ acc) {
  const int64_t i = blockIdx.x;
  const int64_t dst = rows[i];
  const float s = scale[i];
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) acc[dst * width + c] += s * x[i * width + c];
}

}  // namespace

void gather_rows(const float* x, const int32_t* rows, int64_t n, int64_t width, float* out, cudaStream_t s) {
  if (n <= 0) return;
  MOE_CUDA_LAUNCH(gather_kernel, static_cast<unsigned>(n), 256, 0, s, x, rows, width, out);
}

void scatter_add_rows(const float* x, const int32_t* rows, const float* scale, int64_t n, int64_t width, float* acc,
                      cudaStream_t s) {
  if (n <= 0) return;
  MOE_CUDA_LAUNCH(scatter_add_kernel, static_cast<unsigned>(n), 256, 0, s, x, rows, scale, width, acc);
}

}  // namespace moe::cuda
