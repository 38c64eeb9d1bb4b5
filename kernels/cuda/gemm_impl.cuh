// Kernel templates of gemm.cuh (device code; included by gemm.cu and the per-format gemm_q*.cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/qlayout.cuh"

namespace moe::cuda::gemm_detail {

constexpr int kBM = 64, kBN = 64, kBK = 32;
constexpr int kLds = kBK + 8;  // padded row: fragment loads of 8 rows x 4 words hit 32 distinct banks
constexpr int kThreads = 128;  // 4 warps, 2 x 2 over the tile
// x = hi + mid + lo, three bf16 terms: 24 significant bits, f32's own precision. Two terms (16
// bits) leave ~1.5e-5 relative error per product, visible next to the CPU backend's ~5e-6 golden
// agreement; the third costs one more MMA per fragment.
constexpr int kXTerms = 3;

enum class Epilogue : uint8_t { kStore, kSiluMul };

struct Smem {
  __nv_bfloat16 x[kXTerms][kBM][kLds];  // x as a sum of bf16 terms, largest first
  __nv_bfloat16 w[kXTerms][kBN][kLds];  // the weight as bf16 terms (codes and bf16: one term)
  float s[kBN][2], z[kBN][2];           // per k step of the tile: its group's scale and zero
};

__device__ __forceinline__ uint32_t pack_pair(const __nv_bfloat16* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)c, (void)a, (void)b0, (void)b1;
  __trap();  // mma.sync bf16 needs sm_80; the build targets 80 and up
#endif
}

__device__ __forceinline__ float load_elem(const void* p, Elem e, int64_t i) {
  switch (e) {
    case Elem::kF32: return static_cast<const float*>(p)[i];
    case Elem::kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case Elem::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
  return 0.0f;
}

// Q == kNone: unquantized weights of element type E; otherwise quantized (E unused).
template <QFormat Q, int G, Elem E, Epilogue kEpi>
__global__ void __launch_bounds__(kThreads)
    gemm_kernel(const float* __restrict__ x, int T, int64_t K, const void* __restrict__ wdata, int64_t N,
                BiasOperand bias, const float* __restrict__ xsum, float* __restrict__ y) {
  constexpr bool kQuant = Q != QFormat::kNone;
  // Terms of the weight: codes and bf16 are exact in one, f16 in two, f32 (24 bits) in three.
  constexpr int kWTerms = kQuant || E == Elem::kBF16 ? 1 : (E == Elem::kF16 ? 2 : 3);
  __shared__ Smem sm;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 1, wn = warp & 1;
  const int g = lane >> 2, t4 = lane & 3;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int64_t nb = kQuant ? K / G : 1;
  const int64_t row_bytes = kQuant ? nb * QLayout<Q, G>::kBlockBytes : K * (E == Elem::kF32 ? 4 : 2);
  const auto* wbytes = static_cast<const uint8_t*>(wdata);

  float acc[2][4][4] = {};
  float accg[2][4][4] = {};  // quantized: the current group's code sums

  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
    // x tile, split into bf16 terms (each the rounding of what the previous ones left).
    for (int idx = tid; idx < kBM * kBK; idx += kThreads) {
      const int r = idx / kBK, c = idx % kBK;
      const int64_t m = m0 + r, k = k0 + c;
      float v = (m < T && k < K) ? __ldg(x + m * K + k) : 0.0f;
#pragma unroll
      for (int i = 0; i < kXTerms; ++i) {
        const __nv_bfloat16 t = __float2bfloat16_rn(v);
        sm.x[i][r][c] = t;
        v -= __bfloat162float(t);
      }
    }
    // weight tile: codes (exact in bf16) or values (split when not bf16).
    for (int idx = tid; idx < kBN * kBK; idx += kThreads) {
      const int r = idx / kBK, c = idx % kBK;
      const int64_t n = n0 + r, k = k0 + c;
      const bool in = n < N && k < K;
      const uint8_t* row = wbytes + n * row_bytes;
      if constexpr (kQuant) {
        sm.w[0][r][c] = __float2bfloat16_rn(in ? static_cast<float>(qcode<Q, G>(row, nb, k)) : 0.0f);
      } else {
        float v = in ? load_elem(row, E, k) : 0.0f;
#pragma unroll
        for (int i = 0; i < kWTerms; ++i) {
          const __nv_bfloat16 t = __float2bfloat16_rn(v);
          sm.w[i][r][c] = t;
          v -= __bfloat162float(t);
        }
      }
    }
    if constexpr (kQuant) {
      for (int idx = tid; idx < kBN * 2; idx += kThreads) {
        const int r = idx >> 1, ks = idx & 1;
        const int64_t n = n0 + r, k = k0 + 16 * ks;
        float2 sz = make_float2(0.0f, 0.0f);
        if (n < N && k < K) sz = qmeta<Q, G>(wbytes + n * row_bytes, nb, k / G);
        sm.s[r][ks] = sz.x;
        sm.z[r][ks] = sz.y;
      }
    }
    __syncthreads();

#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
      const int64_t kk = k0 + 16 * ks;
      if (kk >= K) break;
      const int kc = 16 * ks + 2 * t4;
      uint32_t a[kXTerms][2][4];  // A fragments (m16 x k16, row-major) of every x term
#pragma unroll
      for (int i = 0; i < kXTerms; ++i)
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          const int r = wm * 32 + mt * 16 + g;
          a[i][mt][0] = pack_pair(&sm.x[i][r][kc]);
          a[i][mt][1] = pack_pair(&sm.x[i][r + 8][kc]);
          a[i][mt][2] = pack_pair(&sm.x[i][r][kc + 8]);
          a[i][mt][3] = pack_pair(&sm.x[i][r + 8][kc + 8]);
        }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int r = wn * 32 + nt * 8 + g;
        uint32_t b[kWTerms][2];  // B fragments (k16 x n8, column-major) of every weight term
#pragma unroll
        for (int j = 0; j < kWTerms; ++j) {
          b[j][0] = pack_pair(&sm.w[j][r][kc]);
          b[j][1] = pack_pair(&sm.w[j][r][kc + 8]);
        }
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          float(&c)[4] = kQuant ? accg[mt][nt] : acc[mt][nt];
          // Products of x term i and weight term j down to 2^-16 relative (i + j <= 2), smallest
          // first: they are added to an accumulator that is still small.
#pragma unroll
          for (int ij = 2; ij >= 0; --ij)
#pragma unroll
            for (int j = 0; j < kWTerms; ++j)
              if (ij - j >= 0 && ij - j < kXTerms) mma_bf16(c, a[ij - j][mt], b[j][0], b[j][1]);
        }
      }
      if constexpr (kQuant) {
        if ((kk + 16) % G == 0) {  // the group ends with this k step: fold it in
          const int64_t b = kk / G;
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int64_t m = m0 + wm * 32 + mt * 16 + g + 8 * h;
              const float xs = m < T ? __ldg(xsum + m * nb + b) : 0.0f;
#pragma unroll
              for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                  const int r = wn * 32 + nt * 8 + 2 * t4 + e;
                  float& a = accg[mt][nt][2 * h + e];
                  acc[mt][nt][2 * h + e] = fmaf(sm.s[r][ks], a - sm.z[r][ks] * xs, acc[mt][nt][2 * h + e]);
                  a = 0.0f;
                }
              }
            }
          }
        }
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t m = m0 + wm * 32 + mt * 16 + g + 8 * h;
      if (m >= T) continue;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t n = n0 + wn * 32 + nt * 8 + 2 * t4 + e;
          if (n >= N) continue;
          const float v = acc[mt][nt][2 * h + e];
          if constexpr (kEpi == Epilogue::kSiluMul) {
            y[m * N + n] = v / (1.0f + expf(-v)) * y[m * N + n];
          } else {
            y[m * N + n] = v + (bias.data != nullptr ? load_elem(bias.data, bias.elem, n) : 0.0f);
          }
        }
      }
    }
  }
}

inline dim3 gemm_grid(int T, int64_t N) {
  return dim3(static_cast<unsigned>((N + kBN - 1) / kBN), static_cast<unsigned>((T + kBM - 1) / kBM));
}

// Launchers for one quantized format (gemm_q8.cu, gemm_q4.cu, gemm_q3.cu, gemm_q2.cu).
template <QFormat Q>
void launch_qgemm(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, const float* xsum, float* y,
                  bool silu_mul, cudaStream_t s);

template <QFormat Q>
void launch_qgemm_impl(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, const float* xsum,
                       float* y, bool silu_mul, cudaStream_t s) {
  const bool ok = with_group(w.group, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    if (silu_mul)
      MOE_CUDA_LAUNCH((gemm_kernel<Q, G, Elem::kF32, Epilogue::kSiluMul>), gemm_grid(T, w.n), kThreads, 0, s, x, T, w.k,
                      w.data, w.n, bias, xsum, y);
    else
      MOE_CUDA_LAUNCH((gemm_kernel<Q, G, Elem::kF32, Epilogue::kStore>), gemm_grid(T, w.n), kThreads, 0, s, x, T, w.k,
                      w.data, w.n, bias, xsum, y);
  });
  if (!ok) throw std::invalid_argument("gemm: unsupported group size " + std::to_string(w.group));
}

}  // namespace moe::cuda::gemm_detail
