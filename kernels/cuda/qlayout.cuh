// Device-side helpers over the device layout of quantized rows (quant_repack.cuh). Device code:
// included by .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/operand.cuh"

namespace moe::cuda {

// Device code that also compiles for the host (the row-walking helpers of the GEMV and the layout
// accessors), so that their index arithmetic can be exercised without a GPU.
#define MOE_HD __host__ __device__ __forceinline__
// `#pragma unroll` for the device passes only (the host compiler would warn about it).
#ifdef __CUDA_ARCH__
#define MOE_UNROLL _Pragma("unroll")
#else
#define MOE_UNROLL
#endif

// Streaming (evict-first) and read-only loads; plain loads on the host.
template <class T>
MOE_HD T ld_stream(const T* p) {
#ifdef __CUDA_ARCH__
  return __ldcs(p);
#else
  return *p;
#endif
}
template <class T>
MOE_HD T ld_ro(const T* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}
MOE_HD uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#ifdef __CUDA_ARCH__
  return __byte_perm(x, y, s);
#else
  const uint64_t v = static_cast<uint64_t>(y) << 32 | x;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= static_cast<uint32_t>((v >> (8 * ((s >> (4 * i)) & 7))) & 0xFF) << (8 * i);
  return r;
#endif
}
MOE_HD float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

// Byte counts of one block's pieces for format Q, group G.
template <QFormat Q, int G>
struct QLayout {
  static constexpr int kBits = qformat_bits(Q);
  // Bytes of one block in the main code plane (q3: its two low bits, laid out as q2).
  static constexpr int kPlaneBytes = Q == QFormat::kQ3 ? G / 4 : G * kBits / 8;
  static constexpr int kBlockBytes = 4 + G * kBits / 8;
  static_assert(G == 16 || G == 32 || G == 64 || G == 128 || G == 256, "group size");
};

// Offsets inside one device-layout row of nb blocks.
template <QFormat Q, int G>
MOE_HD int64_t qhigh_offset(int64_t nb) {  // q3 high-bit plane
  return nb * (G / 4);
}
template <QFormat Q, int G>
MOE_HD int64_t qmeta_offset(int64_t nb) {
  return nb * (QLayout<Q, G>::kBlockBytes - 4);
}

MOE_HD uint16_t ld_u16(const uint8_t* p) {
  return *reinterpret_cast<const uint16_t*>(p);
}

// Scale and zero of block b (2-byte aligned loads: rows are only guaranteed 2-byte aligned).
template <QFormat Q, int G>
MOE_HD float2 qmeta(const uint8_t* row, int64_t nb, int64_t b) {
  const uint8_t* m = row + qmeta_offset<Q, G>(nb) + 4 * b;
  __half_raw s, z;
  s.x = ld_u16(m);
  z.x = ld_u16(m + 2);
  return make_float2(__half2float(__half(s)), __half2float(__half(z)));
}

// Code j (0 <= j < K) of one device-layout row: for gathers, embeddings and tile loads.
template <QFormat Q, int G>
MOE_HD uint32_t qcode(const uint8_t* row, int64_t nb, int64_t j) {
  const int64_t b = j / G;
  const int i = static_cast<int>(j % G);
  const uint8_t* c = row + b * QLayout<Q, G>::kPlaneBytes;
  if constexpr (Q == QFormat::kQ8) {
    return c[i];
  } else if constexpr (Q == QFormat::kQ4) {
    return i < G / 2 ? (c[i] & 15u) : (c[i - G / 2] >> 4);
  } else {
    const uint32_t lo = (static_cast<uint32_t>(c[i % (G / 4)]) >> (2 * (i / (G / 4)))) & 3u;
    if constexpr (Q == QFormat::kQ2) {
      return lo;
    } else {
      const uint8_t* h = row + qhigh_offset<Q, G>(nb);
      return lo | (((static_cast<uint32_t>(h[j >> 3]) >> (j & 7)) & 1u) << 2);
    }
  }
}

// Calls f(std::integral_constant<int, G>{}) for the runtime group size; false when unsupported.
template <class F>
bool with_group(int group, F&& f) {
  switch (group) {
    case 16: f(std::integral_constant<int, 16>{}); return true;
    case 32: f(std::integral_constant<int, 32>{}); return true;
    case 64: f(std::integral_constant<int, 64>{}); return true;
    case 128: f(std::integral_constant<int, 128>{}); return true;
    case 256: f(std::integral_constant<int, 256>{}); return true;
    default: return false;
  }
}

}  // namespace moe::cuda
