#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/kv_append.cuh"

namespace moe::cuda {
namespace {

// grid (T * n_kv): one (token, head) row of head_dim floats each.
__global__ void kv_append_kernel(const float* __restrict__ k, const float* __restrict__ v, int n_kv, int D, int bs,
                                 const int32_t* __restrict__ slots, float* __restrict__ kc, float* __restrict__ vc) {
  const int t = blockIdx.x / n_kv, h = blockIdx.x % n_kv;
  const int64_t slot = slots[t];
  const int64_t src = (static_cast<int64_t>(t) * n_kv + h) * D;
  const int64_t dst = (((slot / bs) * n_kv + h) * bs + slot % bs) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    kc[dst + d] = k[src + d];
    vc[dst + d] = v[src + d];
  }
}

}  // namespace

void kv_append(const float* k, const float* v, int T, int n_kv, int head_dim, int block_size, const int32_t* slots,
               float* kc, float* vc, cudaStream_t s) {
  if (T <= 0 || n_kv <= 0) return;
  MOE_CUDA_LAUNCH(kv_append_kernel, static_cast<unsigned>(T * n_kv), 128, 0, s, k, v, n_kv, head_dim, block_size, slots,
                  kc, vc);
}

}  // namespace moe::cuda
