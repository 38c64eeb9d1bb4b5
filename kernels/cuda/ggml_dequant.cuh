// Dequantization of ggml's block formats, 32 weights at a time (device code that also compiles
// for the host, so tests/cuda_host runs the very code the kernels run). Layouts and arithmetic are
// ggml's (ggml-common.h, ggml-quants.c dequantize_row_*): every product and sum is rounded as
// ggml rounds it (no fused multiply-add, which nvcc would otherwise contract to), so the values
// equal kernels/quant/ggml_quants.h's ggml_dequantize_row bit for bit.
//
// A unit is 32 consecutive weights: a whole Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 block (sub = 0), or
// sub-block sub (0..7) of a 256-weight Q2_K .. Q6_K / IQ4_XS super-block.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/gemv_ggml.cuh"
#include "kernels/cuda/gemv_impl.cuh"
#include "kernels/cuda/qlayout.cuh"

namespace moe::cuda::ggml {

constexpr int kUnit = 32;

// A type's block sizes as compile-time constants (usable in device code).
template <GgmlType T>
struct Block {
  static constexpr int kElems = ggml_block_elems(T);
  static constexpr int kBytes = ggml_block_bytes(T);
  static constexpr int kUnits = kElems / kUnit;
};

MOE_HD float f16_at(const uint8_t* p) {
  __half_raw h;
  h.x = static_cast<unsigned short>(p[0] | (p[1] << 8));
  return __half2float(__half(h));
}
// Correctly rounded products and sums, never contracted into an FMA.
MOE_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
MOE_HD float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
MOE_HD float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// Q4_K / Q5_K: the 6-bit scale and min of sub-block j (ggml's get_scale_min_k4).
MOE_HD void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// IQ4_NL's 16 levels (ggml's kvalues_iq4nl: -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25,
// 38, 53, 69, 89, 113) packed as bytes into two words, so that a lookup stays in registers (an
// indexed local array would live in local memory).
MOE_HD int iq4nl_value(int i) {
  constexpr uint64_t kLo = 0xF6EADDCFBFAD9881ull;
  constexpr uint64_t kHi = 0x7159453526190D01ull;
  return static_cast<int8_t>(static_cast<uint8_t>((i < 8 ? kLo : kHi) >> (8 * (i & 7))));
}

// out[0, 32) = weights [32 * sub, 32 * sub + 32) of the block at b.
template <GgmlType T>
MOE_HD void dequant_unit(const uint8_t* b, int sub, float out[kUnit]) {
  if constexpr (T == GgmlType::kQ4_0) {  // half d; u8 qs[16]
    const float d = f16_at(b);
    const uint8_t* qs = b + 2;
    MOE_UNROLL
    for (int j = 0; j < 16; ++j) {
      out[j] = mul_rn(static_cast<float>((qs[j] & 0xF) - 8), d);
      out[j + 16] = mul_rn(static_cast<float>((qs[j] >> 4) - 8), d);
    }
  } else if constexpr (T == GgmlType::kQ4_1) {  // half d, m; u8 qs[16]
    const float d = f16_at(b), m = f16_at(b + 2);
    const uint8_t* qs = b + 4;
    MOE_UNROLL
    for (int j = 0; j < 16; ++j) {
      out[j] = add_rn(mul_rn(static_cast<float>(qs[j] & 0xF), d), m);
      out[j + 16] = add_rn(mul_rn(static_cast<float>(qs[j] >> 4), d), m);
    }
  } else if constexpr (T == GgmlType::kQ5_0 || T == GgmlType::kQ5_1) {  // half d(, m); u8 qh[4]; u8 qs[16]
    constexpr bool kMin = T == GgmlType::kQ5_1;
    const float d = f16_at(b), m = kMin ? f16_at(b + 2) : 0.0f;
    const uint8_t* h = b + (kMin ? 4 : 2);
    const uint32_t qh = static_cast<uint32_t>(h[0]) | static_cast<uint32_t>(h[1]) << 8 |
                        static_cast<uint32_t>(h[2]) << 16 | static_cast<uint32_t>(h[3]) << 24;
    const uint8_t* qs = h + 4;
    MOE_UNROLL
    for (int j = 0; j < 16; ++j) {
      const int xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int x0 = (qs[j] & 0x0F) | xh0, x1 = (qs[j] >> 4) | xh1;
      if constexpr (kMin) {
        out[j] = add_rn(mul_rn(static_cast<float>(x0), d), m);
        out[j + 16] = add_rn(mul_rn(static_cast<float>(x1), d), m);
      } else {
        out[j] = mul_rn(static_cast<float>(x0 - 16), d);
        out[j + 16] = mul_rn(static_cast<float>(x1 - 16), d);
      }
    }
  } else if constexpr (T == GgmlType::kQ8_0) {  // half d; i8 qs[32]
    const float d = f16_at(b);
    MOE_UNROLL
    for (int j = 0; j < 32; ++j) out[j] = mul_rn(static_cast<float>(static_cast<int8_t>(b[2 + j])), d);
  } else if constexpr (T == GgmlType::kQ2_K) {  // u8 scales[16]; u8 qs[64]; half d, dmin
    const float d = f16_at(b + 80), dmin = f16_at(b + 82);
    const uint8_t* qs = b + 16 + 32 * (sub / 4);
    const int shift = 2 * (sub % 4);
    MOE_UNROLL
    for (int h = 0; h < 2; ++h) {
      const int sc = b[2 * sub + h];
      const float dl = mul_rn(d, static_cast<float>(sc & 0xF)), ml = mul_rn(dmin, static_cast<float>(sc >> 4));
      MOE_UNROLL
      for (int l = 0; l < 16; ++l)
        out[16 * h + l] = sub_rn(mul_rn(dl, static_cast<float>((qs[16 * h + l] >> shift) & 3)), ml);
    }
  } else if constexpr (T == GgmlType::kQ3_K) {  // u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d
    const float d = f16_at(b + 108);
    const uint8_t* hm = b;
    const uint8_t* qs = b + 32 + 32 * (sub / 4);
    const uint8_t* s = b + 96;
    const int shift = 2 * (sub % 4);
    MOE_UNROLL
    for (int h = 0; h < 2; ++h) {
      const int k = 2 * sub + h;  // 6-bit scale k: low nibble, then two high bits
      const int lo = k < 8 ? (s[k] & 0xF) : (s[k - 8] >> 4);
      const int hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
      const float dl = mul_rn(d, static_cast<float>((lo | hi << 4) - 32));
      MOE_UNROLL
      for (int l = 0; l < 16; ++l) {
        const int i = 16 * h + l;
        const int q = ((qs[i] >> shift) & 3) - ((hm[i] >> sub) & 1 ? 0 : 4);
        out[i] = mul_rn(dl, static_cast<float>(q));
      }
    }
  } else if constexpr (T == GgmlType::kQ4_K || T == GgmlType::kQ5_K) {
    // half d, dmin; u8 scales[12]; (Q5_K: u8 qh[32];) u8 qs[128]
    constexpr bool k5 = T == GgmlType::kQ5_K;
    const float d = f16_at(b), dmin = f16_at(b + 2);
    int sc, m;
    scale_min_k4(sub, b + 4, &sc, &m);
    const float d1 = mul_rn(d, static_cast<float>(sc)), m1 = mul_rn(dmin, static_cast<float>(m));
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (k5 ? 48 : 16) + 32 * (sub / 2);
    const int shift = 4 * (sub % 2);
    MOE_UNROLL
    for (int l = 0; l < 32; ++l) {
      int q = (qs[l] >> shift) & 0xF;
      if constexpr (k5) q += ((qh[l] >> sub) & 1) << 4;
      out[l] = sub_rn(mul_rn(d1, static_cast<float>(q)), m1);
    }
  } else if constexpr (T == GgmlType::kQ6_K) {  // u8 ql[128]; u8 qh[64]; i8 scales[16]; half d
    const float d = f16_at(b + 208);
    const int nh = sub / 4, r = sub % 4;
    const uint8_t* ql = b + 64 * nh + 32 * (r & 1);
    const uint8_t* qh = b + 128 + 32 * nh;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * nh + 2 * r);
    const int lshift = r >= 2 ? 4 : 0, hshift = 2 * r;
    MOE_UNROLL
    for (int l = 0; l < 32; ++l) {
      const int q = (((ql[l] >> lshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4)) - 32;
      out[l] = mul_rn(mul_rn(d, static_cast<float>(sc[l / 16])), static_cast<float>(q));
    }
  } else {  // IQ4_XS: half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]
    const float d = f16_at(b);
    const int scales_h = b[2] | (b[3] << 8);
    const int ls = ((b[4 + sub / 2] >> (4 * (sub % 2))) & 0xF) | (((scales_h >> (2 * sub)) & 3) << 4);
    const float dl = mul_rn(d, static_cast<float>(ls - 32));
    const uint8_t* qs = b + 8 + 16 * sub;
    MOE_UNROLL
    for (int j = 0; j < 16; ++j) {
      out[j] = mul_rn(dl, static_cast<float>(iq4nl_value(qs[j] & 0xF)));
      out[j + 16] = mul_rn(dl, static_cast<float>(iq4nl_value(qs[j] >> 4)));
    }
  }
}

// Weights [32 u, 32 u + 32) of a row of ggml blocks.
template <GgmlType T>
MOE_HD void dequant_row_unit(const uint8_t* row, int64_t u, float out[kUnit]) {
  dequant_unit<T>(row + (u / Block<T>::kUnits) * Block<T>::kBytes, static_cast<int>(u % Block<T>::kUnits), out);
}

// The NT dot products of one row of `units` 32-weight units with x, partial for lane `lane` of
// the row's warp (units lane, lane + 32, ...; not reduced), accumulated in f32.
template <GgmlType T, int NT>
MOE_HD void row_dot(const uint8_t* row, int64_t units, const gemv_detail::XRows<NT>& xr, int lane, float* acc) {
  for (int64_t u = lane; u < units; u += 32) {
    float w[kUnit];
    dequant_row_unit<T>(row, u, w);
    const int64_t j0 = u * kUnit;
    MOE_UNROLL
    for (int t = 0; t < NT; ++t) {
      if (t < xr.T) {
        MOE_UNROLL
        for (int e = 0; e < kUnit; e += 4) {
          const float4 xv = xr.get(t, j0 + e);
          acc[t] = fmaf(w[e], xv.x, acc[t]);
          acc[t] = fmaf(w[e + 1], xv.y, acc[t]);
          acc[t] = fmaf(w[e + 2], xv.z, acc[t]);
          acc[t] = fmaf(w[e + 3], xv.w, acc[t]);
        }
      }
    }
  }
}

// Calls f(std::integral_constant<GgmlType, t>{}) for the runtime type.
template <class F>
void with_type(GgmlType t, F&& f) {
  switch (t) {
    case GgmlType::kQ4_0: f(std::integral_constant<GgmlType, GgmlType::kQ4_0>{}); return;
    case GgmlType::kQ4_1: f(std::integral_constant<GgmlType, GgmlType::kQ4_1>{}); return;
    case GgmlType::kQ5_0: f(std::integral_constant<GgmlType, GgmlType::kQ5_0>{}); return;
    case GgmlType::kQ5_1: f(std::integral_constant<GgmlType, GgmlType::kQ5_1>{}); return;
    case GgmlType::kQ8_0: f(std::integral_constant<GgmlType, GgmlType::kQ8_0>{}); return;
    case GgmlType::kQ2_K: f(std::integral_constant<GgmlType, GgmlType::kQ2_K>{}); return;
    case GgmlType::kQ3_K: f(std::integral_constant<GgmlType, GgmlType::kQ3_K>{}); return;
    case GgmlType::kQ4_K: f(std::integral_constant<GgmlType, GgmlType::kQ4_K>{}); return;
    case GgmlType::kQ5_K: f(std::integral_constant<GgmlType, GgmlType::kQ5_K>{}); return;
    case GgmlType::kQ6_K: f(std::integral_constant<GgmlType, GgmlType::kQ6_K>{}); return;
    case GgmlType::kIQ4_XS: f(std::integral_constant<GgmlType, GgmlType::kIQ4_XS>{}); return;
  }
}

}  // namespace moe::cuda::ggml
