#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_check.cuh"

namespace moe::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kHeadsPerBlock = 8;  // query heads of one KV group handled by one block

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// grid (n_kv * hsub, splits, T); partials: m, l (T, n_heads, splits), o (T, n_heads, splits, D),
// indexed by the launch's row i (q row r.rows[i]).
template <int DPL>
__global__ void __launch_bounds__(32 * kWarps)
    decode_kernel(const float* __restrict__ q, const float* __restrict__ kc, const float* __restrict__ vc,
                  AttentionShape a, DecodeRows r, int hsub, float* __restrict__ part_m, float* __restrict__ part_l,
                  float* __restrict__ part_o) {
  __shared__ float sm_m[kWarps][kHeadsPerBlock], sm_l[kWarps][kHeadsPerBlock];
  __shared__ float sm_o[kWarps][kHeadsPerBlock][32 * DPL];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int D = a.head_dim;
  const int kvh = blockIdx.x / hsub, hs = blockIdx.x % hsub;
  const int group = a.n_heads / a.n_kv;
  const int h0 = kvh * group + hs * kHeadsPerBlock;
  const int nh = min(kHeadsPerBlock, group - hs * kHeadsPerBlock);
  const int splits = gridDim.y, split = blockIdx.y, t = blockIdx.z;
  const int64_t qrow = r.rows[t];
  const int64_t pos = r.positions[t];
  const int32_t* table = r.block_table + r.tables[t];
  const int64_t first = a.window > 0 ? max(int64_t{0}, pos - a.window + 1) : int64_t{0};
  const int64_t n_keys = pos - first + 1;
  const int64_t chunk = (n_keys + splits - 1) / splits;
  const int64_t j0 = first + split * chunk;
  const int64_t j1 = min(j0 + chunk, pos + 1);

  float qv[kHeadsPerBlock][DPL];
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h)
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      qv[h][i] = (h < nh && d < D) ? q[(qrow * a.n_heads + h0 + h) * D + d] : 0.0f;
    }
  float m[kHeadsPerBlock], l[kHeadsPerBlock], o[kHeadsPerBlock][DPL];
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[h][i] = 0.0f;
  }

  for (int64_t j = j0 + warp; j < j1; j += kWarps) {
    const int64_t off = paged_offset(table, j, a.block_size, a.n_kv, kvh, D);
    float kr[DPL], vr[DPL];
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      kr[i] = d < D ? __ldg(kc + off + d) : 0.0f;
      vr[i] = d < D ? __ldg(vc + off + d) : 0.0f;
    }
#pragma unroll
    for (int h = 0; h < kHeadsPerBlock; ++h) {
      if (h < nh) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; ++i) s = fmaf(qv[h][i], kr[i], s);
        s = warp_sum(s) * a.scale;
        const float m_new = fmaxf(m[h], s);
        const float alpha = expf(m[h] - m_new);
        const float p = expf(s - m_new);
        l[h] = l[h] * alpha + p;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[h][i] = fmaf(p, vr[i], o[h][i] * alpha);
        m[h] = m_new;
      }
    }
  }

  // Merge the four warps.
#pragma unroll
  for (int h = 0; h < kHeadsPerBlock; ++h) {
    if (lane == 0) {
      sm_m[warp][h] = m[h];
      sm_l[warp][h] = l[h];
    }
#pragma unroll
    for (int i = 0; i < DPL; ++i) sm_o[warp][h][lane + 32 * i] = o[h][i];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < nh * D; idx += blockDim.x) {
    const int h = idx / D, d = idx % D;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w][h]);
    float L = 0.0f, O = 0.0f;
    if (M != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        if (sm_m[w][h] == -INFINITY) continue;
        const float f = expf(sm_m[w][h] - M);
        L += sm_l[w][h] * f;
        O += sm_o[w][h][d] * f;
      }
    }
    const int64_t slot = (static_cast<int64_t>(t) * a.n_heads + h0 + h) * splits + split;
    part_o[slot * D + d] = O;
    if (d == 0) {
      part_m[slot] = M;
      part_l[slot] = L;
    }
  }
}

// grid (T * n_heads): out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
__global__ void combine_kernel(const float* __restrict__ part_m, const float* __restrict__ part_l,
                               const float* __restrict__ part_o, int splits, int D, int n_heads,
                               const int32_t* __restrict__ rows, float* __restrict__ out) {
  const int64_t row = blockIdx.x;  // t * n_heads + h
  const int64_t out_row = static_cast<int64_t>(rows[row / n_heads]) * n_heads + row % n_heads;
  const float* pm = part_m + row * splits;
  const float* pl = part_l + row * splits;
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, pm[s]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float L = 0.0f, O = 0.0f;
    for (int s = 0; s < splits; ++s) {
      if (pm[s] == -INFINITY) continue;
      const float f = expf(pm[s] - M);
      L += pl[s] * f;
      O += part_o[(row * splits + s) * D + d] * f;
    }
    out[out_row * D + d] = O / L;
  }
}

int heads_sub(const AttentionShape& a) {
  const int group = a.n_heads / a.n_kv;
  return (group + kHeadsPerBlock - 1) / kHeadsPerBlock;
}

template <int DPL>
void launch(const float* q, const float* kc, const float* vc, const AttentionShape& a, const DecodeRows& r, int splits,
            float* scratch, cudaStream_t s) {
  const int hsub = heads_sub(a);
  const int64_t slots = static_cast<int64_t>(a.T) * a.n_heads * splits;
  float* pm = scratch;
  float* pl = pm + slots;
  float* po = pl + slots;
  const dim3 grid(static_cast<unsigned>(a.n_kv * hsub), static_cast<unsigned>(splits), static_cast<unsigned>(a.T));
  MOE_CUDA_LAUNCH(decode_kernel<DPL>, grid, 32 * kWarps, 0, s, q, kc, vc, a, r, hsub, pm, pl, po);
}

}  // namespace

int attention_decode_splits(const AttentionShape& a, int sms) {
  const int64_t blocks = static_cast<int64_t>(a.n_kv) * heads_sub(a) * a.T;
  const int64_t want = (2 * static_cast<int64_t>(sms) + blocks - 1) / blocks;
  const int64_t most = (a.max_seq_len + 31) / 32;  // at least 32 keys per slice when full
  int64_t s = want < most ? want : most;
  if (s > 64) s = 64;
  return s < 1 ? 1 : static_cast<int>(s);
}

int64_t attention_decode_scratch_floats(const AttentionShape& a, int splits) {
  return static_cast<int64_t>(a.T) * a.n_heads * splits * (a.head_dim + 2);
}

void attention_decode(const float* q, const float* kc, const float* vc, const AttentionShape& a, const DecodeRows& r,
                      int splits, float* scratch, float* out, cudaStream_t s) {
  if (a.T < 1 || a.block_size < 1 || a.n_kv <= 0 || a.n_heads % a.n_kv != 0 || a.head_dim <= 0 ||
      a.head_dim > kAttentionMaxHeadDim || splits < 1)
    throw std::invalid_argument("attention_decode: unsupported shape (T " + std::to_string(a.T) + ", heads " +
                                std::to_string(a.n_heads) + "/" + std::to_string(a.n_kv) + ", head_dim " +
                                std::to_string(a.head_dim) + ")");
  if (a.head_dim <= 32)
    launch<1>(q, kc, vc, a, r, splits, scratch, s);
  else if (a.head_dim <= 64)
    launch<2>(q, kc, vc, a, r, splits, scratch, s);
  else if (a.head_dim <= 128)
    launch<4>(q, kc, vc, a, r, splits, scratch, s);
  else
    launch<8>(q, kc, vc, a, r, splits, scratch, s);
  const int64_t slots = static_cast<int64_t>(a.T) * a.n_heads * splits;
  MOE_CUDA_LAUNCH(combine_kernel, static_cast<unsigned>(a.T * a.n_heads), 128, 0, s, scratch, scratch + slots,
                  scratch + 2 * slots, splits, a.head_dim, a.n_heads, r.rows, out);
}

}  // namespace moe::cuda
