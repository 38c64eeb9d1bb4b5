#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/routing.cuh"

namespace moe::cuda {
namespace {

constexpr int kPerLane = kRoutingMaxExperts / 32;

// One warp per token; lane holds experts lane, lane + 32, ...
__global__ void softmax_topk_kernel(const float* __restrict__ logits, int T, int E, int top_k, bool renormalize,
                                    int32_t* __restrict__ ids, float* __restrict__ weights) {
  const int lane = threadIdx.x & 31;
  const int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (t >= T) return;
  const float* l = logits + static_cast<int64_t>(t) * E;
  float p[kPerLane];
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int e = lane + 32 * i;
    p[i] = e < E ? l[e] : -INFINITY;
    mx = fmaxf(mx, p[i]);
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    p[i] = lane + 32 * i < E ? expf(p[i] - mx) : 0.0f;
    sum += p[i];
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) p[i] = lane + 32 * i < E ? p[i] / sum : -1.0f;  // -1: not an expert / taken

  float chosen = 0.0f;
  for (int k = 0; k < top_k; ++k) {
    float best = -1.0f;
    int best_e = 0x7fffffff;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int e = lane + 32 * i;
      if (p[i] > best || (p[i] == best && p[i] >= 0.0f && e < best_e)) best = p[i], best_e = e;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, off);
      const int oe = __shfl_xor_sync(0xffffffffu, best_e, off);
      if (ob > best || (ob == best && oe < best_e)) best = ob, best_e = oe;
    }
    if (lane == 0) {
      ids[t * top_k + k] = best_e;
      weights[t * top_k + k] = best;
    }
    chosen += best;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i)
      if (lane + 32 * i == best_e) p[i] = -1.0f;
  }
  if (renormalize && lane == 0)
    for (int k = 0; k < top_k; ++k) weights[t * top_k + k] /= chosen;
}

}  // namespace

void softmax_topk(const float* logits, int T, int E, int top_k, bool renormalize, int32_t* ids, float* weights,
                  cudaStream_t s) {
  if (E < 1 || E > kRoutingMaxExperts || top_k < 1 || top_k > E)
    throw std::invalid_argument("softmax_topk: " + std::to_string(E) + " experts, top " + std::to_string(top_k));
  if (T <= 0) return;
  constexpr int kWarps = 4;
  MOE_CUDA_LAUNCH(softmax_topk_kernel, static_cast<unsigned>((T + kWarps - 1) / kWarps), 32 * kWarps, 0, s, logits, T,
                  E, top_k, renormalize, ids, weights);
}

}  // namespace moe::cuda
