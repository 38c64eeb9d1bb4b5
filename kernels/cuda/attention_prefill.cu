#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_prefill.cuh"
#include "kernels/cuda/cuda_check.cuh"

namespace moe::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kRows = kWarps * kRowsPerWarp;  // query rows per block
constexpr int kKeys = 32;                     // keys per tile

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

size_t smem_bytes(int D) {
  return sizeof(float) *
         (static_cast<size_t>(kRows) * D + static_cast<size_t>(kKeys) * (D + 1) + static_cast<size_t>(kKeys) * D);
}

// grid (ceil(T / 16), n_heads). Shared: Q (16, D), K (32, D + 1), V (32, D).
template <int DPL>
__global__ void __launch_bounds__(32 * kWarps)
    prefill_kernel(const float* __restrict__ q, const float* __restrict__ kc, const float* __restrict__ vc,
                   AttentionShape a, PrefillSeq seq, float* __restrict__ out) {
  extern __shared__ float smem[];
  const int D = a.head_dim;
  float* sq = smem;
  float* sk = sq + kRows * D;
  float* sv = sk + kKeys * (D + 1);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int h = blockIdx.y, kvh = h / (a.n_heads / a.n_kv);
  const int t0 = blockIdx.x * kRows;
  const int t_last = min(t0 + kRows, a.T) - 1;

  for (int idx = threadIdx.x; idx < kRows * D; idx += blockDim.x) {
    const int r = idx / D, d = idx % D;
    const int t = t0 + r;
    sq[idx] = t < a.T ? q[(static_cast<int64_t>(t) * a.n_heads + h) * D + d] : 0.0f;
  }
  // Keys any row of the block sees: [first of row t0, position of the last row].
  const int64_t pos_first = seq.pos0 + t0;
  const int64_t lo = a.window > 0 ? max(int64_t{0}, pos_first - a.window + 1) : int64_t{0};
  const int64_t hi = seq.pos0 + t_last;

  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][DPL];
  int64_t rpos[kRowsPerWarp], rfirst[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[r][i] = 0.0f;
    const int t = t0 + warp * kRowsPerWarp + r;
    rpos[r] = t < a.T ? seq.pos0 + t : -1;  // -1: no keys (padding row)
    rfirst[r] = a.window > 0 ? max(int64_t{0}, rpos[r] - a.window + 1) : int64_t{0};
  }

  for (int64_t kt = lo; kt <= hi; kt += kKeys) {
    __syncthreads();  // the previous tile is consumed (and Q is written, the first time)
    for (int idx = threadIdx.x; idx < kKeys * D; idx += blockDim.x) {
      const int j = idx / D, d = idx % D;
      const int64_t key = kt + j;
      const bool in = key <= hi;
      const int64_t off = in ? paged_offset(seq.table, key, a.block_size, a.n_kv, kvh, D) : 0;
      sk[j * (D + 1) + d] = in ? __ldg(kc + off + d) : 0.0f;
      sv[j * D + d] = in ? __ldg(vc + off + d) : 0.0f;
    }
    __syncthreads();
    // Scores: lane j takes key kt + j for the warp's rows.
    float s[kRowsPerWarp] = {};
    const float* krow = sk + lane * (D + 1);
    const float* qrow = sq + warp * kRowsPerWarp * D;
    for (int d = 0; d < D; ++d) {
      const float kv = krow[d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) s[r] = fmaf(qrow[r * D + d], kv, s[r]);
    }
    const int64_t key = kt + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const bool valid = key <= rpos[r] && key >= rfirst[r];
      const float sc = valid ? s[r] * a.scale : -INFINITY;
      const float mt = warp_max(sc);
      if (mt == -INFINITY) continue;  // no visible key in this tile for this row (warp-uniform)
      const float m_new = fmaxf(m[r], mt);
      const float alpha = expf(m[r] - m_new);
      const float p = valid ? expf(sc - m_new) : 0.0f;
      l[r] = l[r] * alpha + warp_sum(p);
#pragma unroll
      for (int i = 0; i < DPL; ++i) o[r][i] *= alpha;
      for (int j = 0; j < kKeys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int i = 0; i < DPL; ++i) {
          const int d = lane + 32 * i;
          if (d < D) o[r][i] = fmaf(pj, sv[j * D + d], o[r][i]);
        }
      }
      m[r] = m_new;
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int t = t0 + warp * kRowsPerWarp + r;
    if (t >= a.T) continue;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < D) out[(static_cast<int64_t>(t) * a.n_heads + h) * D + d] = o[r][i] / l[r];
    }
  }
}

template <int DPL>
void launch(const float* q, const float* kc, const float* vc, const AttentionShape& a, const PrefillSeq& seq,
            float* out, cudaStream_t s) {
  const size_t smem = smem_bytes(a.head_dim);
  if (smem > 48 * 1024)
    MOE_CUDA_CHECK(
        cudaFuncSetAttribute(prefill_kernel<DPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((a.T + kRows - 1) / kRows), static_cast<unsigned>(a.n_heads));
  MOE_CUDA_LAUNCH(prefill_kernel<DPL>, grid, 32 * kWarps, smem, s, q, kc, vc, a, seq, out);
}

}  // namespace

void attention_prefill(const float* q, const float* kc, const float* vc, const AttentionShape& a, const PrefillSeq& seq,
                       float* out, cudaStream_t s) {
  if (a.T < 1 || a.block_size < 1 || a.n_kv <= 0 || a.n_heads % a.n_kv != 0 || a.head_dim <= 0 ||
      a.head_dim > kAttentionMaxHeadDim)
    throw std::invalid_argument("attention_prefill: unsupported shape (T " + std::to_string(a.T) + ", heads " +
                                std::to_string(a.n_heads) + "/" + std::to_string(a.n_kv) + ", head_dim " +
                                std::to_string(a.head_dim) + ")");
  if (a.head_dim <= 32)
    launch<1>(q, kc, vc, a, seq, out, s);
  else if (a.head_dim <= 64)
    launch<2>(q, kc, vc, a, seq, out, s);
  else if (a.head_dim <= 128)
    launch<4>(q, kc, vc, a, seq, out, s);
  else
    launch<8>(q, kc, vc, a, seq, out, s);
}

}  // namespace moe::cuda
