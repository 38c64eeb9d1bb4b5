// Kernel templates of gemv.cuh (device code, included by the per-format gemv_*.cu files only,
// each of which instantiates its own format: one translation unit per format keeps builds
// parallel and small).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/qlayout.cuh"

namespace moe::cuda::gemv_detail {

constexpr int kWarps = 4;  // rows per block
constexpr int kThreads = 32 * kWarps;

__device__ __forceinline__ float warp_sum(float v) {
  MOE_UNROLL
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ float silu(float g) {
  return g / (1.0f + expf(-g));
}

MOE_HD float load_elem(const void* p, Elem e, int64_t i) {
  switch (e) {
    case Elem::kF32: return static_cast<const float*>(p)[i];
    case Elem::kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case Elem::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
  return 0.0f;
}

// Byte k of w as a float, exactly: the byte placed in the low mantissa bits of 2^23, minus 2^23.
template <int k>
MOE_HD float byte_float(uint32_t w) {
  return bits_float(byte_perm(w, 0x4B000000u, 0x7540u + k)) - 8388608.0f;
}

// Alignment class of a row start: 16, 4 or 2 bytes.
MOE_HD int row_align(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return (a & 15u) == 0 ? 16 : ((a & 3u) == 0 ? 4 : 2);
}

// 16 bytes at p (valid: how many are inside the row, a multiple of 2) as four words, zero-filled.
// Weights are read once per call: streaming loads (evict first).
MOE_HD void load_chunk(const uint8_t* p, int valid, int align, uint32_t w[4]) {
  if (valid >= 16 && align == 16) {
    const uint4 v = ld_stream(reinterpret_cast<const uint4*>(p));
    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    return;
  }
  MOE_UNROLL
  for (int m = 0; m < 4; ++m) {
    if (4 * m + 4 <= valid) {
      w[m] = align >= 4
                 ? ld_stream(reinterpret_cast<const unsigned int*>(p + 4 * m))
                 : (static_cast<uint32_t>(ld_u16(p + 4 * m)) | static_cast<uint32_t>(ld_u16(p + 4 * m + 2)) << 16);
    } else if (4 * m + 2 <= valid) {
      w[m] = ld_u16(p + 4 * m);
    } else {
      w[m] = 0;
    }
  }
}

// x[t][j .. j + 3] (j % 4 == 0) for the NT token rows.
template <int NT>
struct XRows {
  const float* x;
  int64_t K;
  int T;
  bool vec;  // rows 16-byte aligned: float4 loads
  MOE_HD float4 get(int t, int64_t j) const {
    const float* p = x + t * K + j;
    if (vec) return ld_ro(reinterpret_cast<const float4*>(p));
    return make_float4(ld_ro(p), ld_ro(p + 1), ld_ro(p + 2), ld_ro(p + 3));
  }
};

// d[t] += sum_i (c[i] - z) * x[t][j + i] for 4 codes.
template <int NT>
MOE_HD void dot4(const float c[4], float z, const XRows<NT>& xr, int64_t j, float* d) {
  const float c0 = c[0] - z, c1 = c[1] - z, c2 = c[2] - z, c3 = c[3] - z;
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) {
    if (t < xr.T) {
      const float4 xv = xr.get(t, j);
      d[t] = fmaf(c0, xv.x, d[t]);
      d[t] = fmaf(c1, xv.y, d[t]);
      d[t] = fmaf(c2, xv.z, d[t]);
      d[t] = fmaf(c3, xv.w, d[t]);
    }
  }
}

MOE_HD void bytes4(uint32_t w, float c[4]) {
  c[0] = byte_float<0>(w);
  c[1] = byte_float<1>(w);
  c[2] = byte_float<2>(w);
  c[3] = byte_float<3>(w);
}

// One 16-byte chunk (byte offset o of the row's code plane, words w) of a quantized row dotted
// with x into acc: per block touched, acc += scale * sum (code - zero) * x.
template <QFormat Q, int G, int NT>
MOE_HD void qchunk_dot(const uint8_t* row, const uint8_t* high, int64_t nb, int64_t plane, int64_t o,
                       const uint32_t (&w)[4], const XRows<NT>& xr, float* acc) {
  using L = QLayout<Q, G>;
  constexpr int kPB = L::kPlaneBytes;            // plane bytes per block (power of two)
  constexpr int kWpb = kPB >= 16 ? 4 : kPB / 4;  // words of one block inside a chunk
  float d[NT] = {};
  float2 sz = make_float2(0.0f, 0.0f);
  MOE_UNROLL
  for (int m = 0; m < 4; ++m) {
    const int64_t p = o + 4 * m;
    if (p >= plane) break;
    const int64_t b = p / kPB;
    const int i = static_cast<int>(p % kPB);  // in-block byte
    if (m % kWpb == 0) {
      sz = qmeta<Q, G>(row, nb, b);
      MOE_UNROLL
      for (int t = 0; t < NT; ++t) d[t] = 0.0f;
    }
    const int64_t base = b * G;  // row index of the block's code 0
    float cf[4];
    if constexpr (Q == QFormat::kQ8) {
      bytes4(w[m], cf);
      dot4<NT>(cf, sz.y, xr, base + i, d);
    } else if constexpr (Q == QFormat::kQ4) {
      bytes4(w[m] & 0x0F0F0F0Fu, cf);
      dot4<NT>(cf, sz.y, xr, base + i, d);
      bytes4((w[m] >> 4) & 0x0F0F0F0Fu, cf);
      dot4<NT>(cf, sz.y, xr, base + i + G / 2, d);
    } else {
      MOE_UNROLL
      for (int q = 0; q < 4; ++q) {
        uint32_t v = (w[m] >> (2 * q)) & 0x03030303u;
        const int64_t j = base + i + q * (G / 4);
        if constexpr (Q == QFormat::kQ3) {
          const uint32_t nib = (static_cast<uint32_t>(ld_ro(high + (j >> 3))) >> (j & 4)) & 15u;
          v |= (nib * 0x00810204u) & 0x04040404u;  // bit t of nib -> bit 2 of byte t
        }
        bytes4(v, cf);
        dot4<NT>(cf, sz.y, xr, j, d);
      }
    }
    if (m % kWpb == kWpb - 1 || p + 4 >= plane) {
      MOE_UNROLL
      for (int t = 0; t < NT; ++t) acc[t] = fmaf(sz.x, d[t], acc[t]);
    }
  }
}

// The NT dot products of one quantized device-layout row with x, partial per lane (not reduced).
// Two chunks per lane per step, both loaded before either is used (more bytes in flight).
template <QFormat Q, int G, int NT>
MOE_HD void qrow_dot(const uint8_t* row, int64_t nb, const XRows<NT>& xr, int lane, float* acc) {
  constexpr int kPB = QLayout<Q, G>::kPlaneBytes;
  const int64_t plane = nb * kPB;
  const int64_t chunks = (plane + 15) / 16;
  const int align = row_align(row);
  const uint8_t* high = row + qhigh_offset<Q, G>(nb);
  for (int64_t c = lane; c < chunks; c += 64) {
    const int64_t o0 = c * 16, o1 = o0 + 32 * 16;
    const bool second = c + 32 < chunks;
    uint32_t w0[4], w1[4] = {0, 0, 0, 0};
    load_chunk(row + o0, static_cast<int>(plane - o0 < 16 ? plane - o0 : 16), align, w0);
    if (second) load_chunk(row + o1, static_cast<int>(plane - o1 < 16 ? plane - o1 : 16), align, w1);
    qchunk_dot<Q, G, NT>(row, high, nb, plane, o0, w0, xr, acc);
    if (second) qchunk_dot<Q, G, NT>(row, high, nb, plane, o1, w1, xr, acc);
  }
}

// The NT dot products of one unquantized row (f32/f16/bf16), partial per lane.
template <Elem E, int NT>
MOE_HD void drow_dot(const void* rowp, int64_t K, const XRows<NT>& xr, int lane, float* acc) {
  constexpr int kEsz = E == Elem::kF32 ? 4 : 2;
  constexpr int kPer = 16 / kEsz;  // elements per chunk
  const auto* row = static_cast<const uint8_t*>(rowp);
  const bool vec = row_align(row) == 16;
  const int64_t chunks = (K + kPer - 1) / kPer;
  for (int64_t c = lane; c < chunks; c += 32) {
    const int64_t j0 = c * kPer;
    float wv[kPer];
    if (vec && j0 + kPer <= K) {
      const uint4 v = ld_stream(reinterpret_cast<const uint4*>(row + j0 * kEsz));
      const uint32_t u[4] = {v.x, v.y, v.z, v.w};
      MOE_UNROLL
      for (int m = 0; m < 4; ++m) {
        if constexpr (E == Elem::kF32) {
          wv[m] = bits_float(u[m]);
        } else if constexpr (E == Elem::kBF16) {
          wv[2 * m] = bits_float(u[m] << 16);
          wv[2 * m + 1] = bits_float(u[m] & 0xFFFF0000u);
        } else {
          __half_raw lo, hi;
          lo.x = static_cast<unsigned short>(u[m] & 0xFFFFu);
          hi.x = static_cast<unsigned short>(u[m] >> 16);
          wv[2 * m] = __half2float(__half(lo));
          wv[2 * m + 1] = __half2float(__half(hi));
        }
      }
    } else {
      MOE_UNROLL
      for (int e = 0; e < kPer; ++e) wv[e] = j0 + e < K ? load_elem(row, E, j0 + e) : 0.0f;
    }
    const bool full = j0 + kPer <= K;
    MOE_UNROLL
    for (int t = 0; t < NT; ++t) {
      if (t < xr.T) {
        const float* xp = xr.x + t * xr.K + j0;
        if (full && xr.vec) {
          MOE_UNROLL
          for (int e = 0; e < kPer; e += 4) {
            const float4 xv = ld_ro(reinterpret_cast<const float4*>(xp + e));
            acc[t] = fmaf(wv[e], xv.x, acc[t]);
            acc[t] = fmaf(wv[e + 1], xv.y, acc[t]);
            acc[t] = fmaf(wv[e + 2], xv.z, acc[t]);
            acc[t] = fmaf(wv[e + 3], xv.w, acc[t]);
          }
        } else {
          MOE_UNROLL
          for (int e = 0; e < kPer; ++e)
            if (j0 + e < K) acc[t] = fmaf(wv[e], ld_ro(xp + e), acc[t]);
        }
      }
    }
  }
}

// Row n of the weight for warp `warp` of this block, or -1.
__device__ __forceinline__ int64_t warp_row(int64_t N) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  return n < N ? n : -1;
}

template <QFormat Q, int G, int NT>
__global__ void __launch_bounds__(kThreads) qgemv_kernel(const uint8_t* __restrict__ w, int64_t N, int64_t K,
                                                         XRows<NT> xr, BiasOperand bias, float* __restrict__ y) {
  const int64_t n = warp_row(N);
  if (n < 0) return;
  const int lane = threadIdx.x & 31;
  const int64_t nb = K / G;
  float acc[NT];
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  qrow_dot<Q, G, NT>(w + n * nb * QLayout<Q, G>::kBlockBytes, nb, xr, lane, acc);
  const float b = bias.data != nullptr ? load_elem(bias.data, bias.elem, n) : 0.0f;
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) {
    const float v = warp_sum(acc[t]);
    if (lane == 0 && t < xr.T) y[t * N + n] = v + b;
  }
}

template <QFormat Q, int G, int NT>
__global__ void __launch_bounds__(kThreads)
    qgemv_swiglu_kernel(const uint8_t* __restrict__ gate, const uint8_t* __restrict__ up, int64_t I, int64_t H,
                        XRows<NT> xr, float* __restrict__ h) {
  const int64_t n = warp_row(I);
  if (n < 0) return;
  const int lane = threadIdx.x & 31;
  const int64_t nb = H / G;
  const int64_t rb = nb * QLayout<Q, G>::kBlockBytes;
  float g[NT], u[NT];
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) g[t] = u[t] = 0.0f;
  qrow_dot<Q, G, NT>(gate + n * rb, nb, xr, lane, g);
  qrow_dot<Q, G, NT>(up + n * rb, nb, xr, lane, u);
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) {
    const float gv = warp_sum(g[t]), uv = warp_sum(u[t]);
    if (lane == 0 && t < xr.T) h[t * I + n] = silu(gv) * uv;
  }
}

template <Elem E, int NT>
__global__ void __launch_bounds__(kThreads) dgemv_kernel(const void* __restrict__ w, int64_t N, int64_t K, XRows<NT> xr,
                                                         BiasOperand bias, float* __restrict__ y) {
  const int64_t n = warp_row(N);
  if (n < 0) return;
  const int lane = threadIdx.x & 31;
  constexpr int kEsz = E == Elem::kF32 ? 4 : 2;
  float acc[NT];
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  drow_dot<E, NT>(static_cast<const uint8_t*>(w) + n * K * kEsz, K, xr, lane, acc);
  const float b = bias.data != nullptr ? load_elem(bias.data, bias.elem, n) : 0.0f;
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) {
    const float v = warp_sum(acc[t]);
    if (lane == 0 && t < xr.T) y[t * N + n] = v + b;
  }
}

template <Elem E, int NT>
__global__ void __launch_bounds__(kThreads)
    dgemv_swiglu_kernel(const void* __restrict__ gate, const void* __restrict__ up, int64_t I, int64_t H, XRows<NT> xr,
                        float* __restrict__ h) {
  const int64_t n = warp_row(I);
  if (n < 0) return;
  const int lane = threadIdx.x & 31;
  constexpr int kEsz = E == Elem::kF32 ? 4 : 2;
  float g[NT], u[NT];
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) g[t] = u[t] = 0.0f;
  drow_dot<E, NT>(static_cast<const uint8_t*>(gate) + n * H * kEsz, H, xr, lane, g);
  drow_dot<E, NT>(static_cast<const uint8_t*>(up) + n * H * kEsz, H, xr, lane, u);
  MOE_UNROLL
  for (int t = 0; t < NT; ++t) {
    const float gv = warp_sum(g[t]), uv = warp_sum(u[t]);
    if (lane == 0 && t < xr.T) h[t * I + n] = silu(gv) * uv;
  }
}

template <int NT>
XRows<NT> make_xrows(const float* x, int64_t K, int T) {
  XRows<NT> r;
  r.x = x;
  r.K = K;
  r.T = T;
  r.vec = reinterpret_cast<uintptr_t>(x) % 16 == 0 && K % 4 == 0;
  return r;
}

inline unsigned gemv_blocks(int64_t rows) {
  return static_cast<unsigned>((rows + kWarps - 1) / kWarps);
}

// Launchers of one quantized format (defined in gemv_q8.cu, gemv_q4.cu, gemv_q3.cu, gemv_q2.cu).
template <QFormat Q>
void launch_qgemv(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y, cudaStream_t s);
template <QFormat Q>
void launch_qgemv_swiglu(const float* x, int T, const WeightOperand& gate, const WeightOperand& up, float* h,
                         cudaStream_t s);

// The bodies of those launchers, instantiated once per format by its .cu file.
template <QFormat Q>
void launch_qgemv_impl(const float* x, int T, const WeightOperand& w, const BiasOperand& bias, float* y,
                       cudaStream_t s) {
  const bool ok = with_group(w.group, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    const auto* wp = static_cast<const uint8_t*>(w.data);
    if (T == 1)
      MOE_CUDA_LAUNCH((qgemv_kernel<Q, G, 1>), gemv_blocks(w.n), kThreads, 0, s, wp, w.n, w.k, make_xrows<1>(x, w.k, T),
                      bias, y);
    else
      MOE_CUDA_LAUNCH((qgemv_kernel<Q, G, kGemvMaxTokens>), gemv_blocks(w.n), kThreads, 0, s, wp, w.n, w.k,
                      make_xrows<kGemvMaxTokens>(x, w.k, T), bias, y);
  });
  if (!ok) throw std::invalid_argument("gemv: unsupported group size " + std::to_string(w.group));
}

template <QFormat Q>
void launch_qgemv_swiglu_impl(const float* x, int T, const WeightOperand& gate, const WeightOperand& up, float* h,
                              cudaStream_t s) {
  const bool ok = with_group(gate.group, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    const auto* g = static_cast<const uint8_t*>(gate.data);
    const auto* u = static_cast<const uint8_t*>(up.data);
    if (T == 1)
      MOE_CUDA_LAUNCH((qgemv_swiglu_kernel<Q, G, 1>), gemv_blocks(gate.n), kThreads, 0, s, g, u, gate.n, gate.k,
                      make_xrows<1>(x, gate.k, T), h);
    else
      MOE_CUDA_LAUNCH((qgemv_swiglu_kernel<Q, G, kGemvMaxTokens>), gemv_blocks(gate.n), kThreads, 0, s, g, u, gate.n,
                      gate.k, make_xrows<kGemvMaxTokens>(x, gate.k, T), h);
  });
  if (!ok) throw std::invalid_argument("gemv_swiglu: unsupported group size " + std::to_string(gate.group));
}

}  // namespace moe::cuda::gemv_detail
