// Host-side checks of the CUDA decode GEMV's index arithmetic (label `kernels`: no GPU needed).
// The row-walking helpers of kernels/cuda/gemv_impl.cuh and the layout accessors of qlayout.cuh
// are __host__ __device__, so the same code that runs in the kernel is run here, lane by lane, on
// rows repacked into the device layout (quant_repack.cuh) at every alignment the kernel meets,
// and compared with the CPU's dequantization. What this cannot check (warp shuffles, the
// kernels' launch shapes, shared memory, the tensor-core GEMM) is left to tests/gpu.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/gemv_impl.cuh"
#include "quant_reference.h"

namespace moe::cuda {
namespace {

using gemv_detail::XRows;

// The body of quant_repack.cu's kernel for every (row, block), on the host.
template <QFormat Q, int G>
void repack_host(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t nb) {
  using L = QLayout<Q, G>;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* s = src + r * nb * L::kBlockBytes + b * L::kBlockBytes;
      uint8_t* d = dst + r * nb * L::kBlockBytes;
      std::memcpy(d + nb * (L::kBlockBytes - 4) + 4 * b, s, 4);
      std::memcpy(d + b * L::kPlaneBytes, s + 4, L::kPlaneBytes);
      if (Q == QFormat::kQ3) std::memcpy(d + nb * (G / 4) + b * (G / 8), s + 4 + G / 4, G / 8);
    }
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// x rows in a 16-byte aligned buffer, as the kernels get them.
struct AlignedX {
  std::vector<float4> storage;
  XRows<kGemvMaxTokens> rows(const std::vector<float>& x, int64_t K, int T) {
    storage.assign(x.size() / 4 + 1, make_float4(0, 0, 0, 0));
    std::memcpy(storage.data(), x.data(), x.size() * sizeof(float));
    XRows<kGemvMaxTokens> r;
    r.x = reinterpret_cast<const float*>(storage.data());
    r.K = K;
    r.T = T;
    r.vec = K % 4 == 0;
    return r;
  }
};

template <QFormat Q, int G>
void check_quant(int64_t N, int64_t blocks, int T, int offset) {
  const int bits = qformat_bits(Q);
  const int64_t K = blocks * G;
  const std::string what = "q" + std::to_string(bits) + "g" + std::to_string(G) + " K " + std::to_string(K) + " T " +
                           std::to_string(T) + " row offset " + std::to_string(offset);
  const std::vector<uint8_t> stored = test::quantize_stored(randn(N * K, 1), N, K, bits, G);
  const std::vector<float> deq = test::dequantize_stored(stored, N, K, bits, G);
  const int64_t rb = qrow_bytes(Q, G, K);
  std::vector<uint8_t> buffer(stored.size() + 64);
  uint8_t* dev = buffer.data() + offset;  // rows at every alignment class
  repack_host<Q, G>(stored.data(), dev, N, blocks);
  const std::vector<float> x = randn(T * K, 2);
  AlignedX ax;
  const XRows<kGemvMaxTokens> xr = ax.rows(x, K, T);
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* row = dev + n * rb;
    for (int64_t j = 0; j < K; ++j) {
      const float2 sz = qmeta<Q, G>(row, blocks, j / G);
      ASSERT_EQ((static_cast<float>(qcode<Q, G>(row, blocks, j)) - sz.y) * sz.x, deq[n * K + j])
          << what << ": qcode/qmeta of row " << n << " code " << j;
    }
    float acc[kGemvMaxTokens] = {};
    for (int lane = 0; lane < 32; ++lane) {  // the warp, one lane at a time
      float a[kGemvMaxTokens] = {};
      gemv_detail::qrow_dot<Q, G, kGemvMaxTokens>(row, blocks, xr, lane, a);
      for (int t = 0; t < kGemvMaxTokens; ++t) acc[t] += a[t];
    }
    for (int t = 0; t < T; ++t) {
      double ref = 0, mag = 0;
      for (int64_t j = 0; j < K; ++j) {
        ref += static_cast<double>(deq[n * K + j]) * x[t * K + j];
        mag += std::fabs(static_cast<double>(deq[n * K + j]) * x[t * K + j]);
      }
      EXPECT_NEAR(acc[t], ref, 1e-5 * mag + 1e-6) << what << ": row " << n << " token " << t;
    }
  }
}

template <QFormat Q>
void check_format() {
  for (int64_t blocks : {1, 3, 8, 37})
    for (int offset : {0, 2, 4, 16}) {
      check_quant<Q, 16>(4, blocks, 3, offset);
      check_quant<Q, 32>(3, blocks, 1, offset);
      check_quant<Q, 64>(3, blocks, 4, offset);
      check_quant<Q, 128>(2, blocks, 2, offset);
      check_quant<Q, 256>(2, blocks, 1, offset);
    }
}

TEST(CudaGemvLayout, Q8) {
  check_format<QFormat::kQ8>();
}
TEST(CudaGemvLayout, Q4) {
  check_format<QFormat::kQ4>();
}
TEST(CudaGemvLayout, Q3) {
  check_format<QFormat::kQ3>();
}
TEST(CudaGemvLayout, Q2) {
  check_format<QFormat::kQ2>();
}

template <Elem E>
void check_dense(int64_t K, int T, int offset) {
  const int esz = E == Elem::kF32 ? 4 : 2;
  const int64_t N = 3;
  const std::vector<float> w = randn(N * K, 3);
  std::vector<float> stored(w.size());
  std::vector<uint8_t> buffer(w.size() * esz + 64);
  uint8_t* dev = buffer.data() + offset;
  for (size_t i = 0; i < w.size(); ++i) {
    float v = w[i];
    if (E == Elem::kF32) {
      std::memcpy(dev + 4 * i, &v, 4);
    } else {
      const uint16_t h = E == Elem::kF16 ? test::to_f16(v) : test::to_bf16(v);
      std::memcpy(dev + 2 * i, &h, 2);
      v = E == Elem::kF16 ? test::from_f16(h) : test::from_bf16(h);
    }
    stored[i] = v;
  }
  const std::vector<float> x = randn(T * K, 4);
  AlignedX ax;
  const XRows<kGemvMaxTokens> xr = ax.rows(x, K, T);
  for (int64_t n = 0; n < N; ++n) {
    float acc[kGemvMaxTokens] = {};
    for (int lane = 0; lane < 32; ++lane) {
      float a[kGemvMaxTokens] = {};
      gemv_detail::drow_dot<E, kGemvMaxTokens>(dev + n * K * esz, K, xr, lane, a);
      for (int t = 0; t < kGemvMaxTokens; ++t) acc[t] += a[t];
    }
    for (int t = 0; t < T; ++t) {
      double ref = 0, mag = 0;
      for (int64_t j = 0; j < K; ++j) {
        ref += static_cast<double>(stored[n * K + j]) * x[t * K + j];
        mag += std::fabs(static_cast<double>(stored[n * K + j]) * x[t * K + j]);
      }
      EXPECT_NEAR(acc[t], ref, 1e-5 * mag + 1e-6)
          << "elem " << static_cast<int>(E) << " K " << K << " offset " << offset << " row " << n << " token " << t;
    }
  }
}

TEST(CudaGemvLayout, Unquantized) {
  for (int64_t K : {1, 3, 7, 16, 64, 101, 1000, 4096})
    for (int offset : {0, 4, 16}) {
      check_dense<Elem::kF32>(K, 4, offset);
      check_dense<Elem::kF16>(K, 2, offset + 2 * (K % 2));
      check_dense<Elem::kBF16>(K, 1, offset + 2);
    }
}

TEST(CudaGemvLayout, BytePermMatchesTheDeviceSemantics) {
  // byte_perm's host emulation against hand-computed selections (the device uses __byte_perm).
  EXPECT_EQ(byte_perm(0x44332211u, 0x88776655u, 0x7540u), 0x88665511u);  // bytes x0, y0, y1, y3
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(bits_float(byte_perm(0xC8A0500Fu, 0x4B000000u, 0x7540u + k)) - 8388608.0f,
              static_cast<float>((0xC8A0500Fu >> (8 * k)) & 0xFF));
}

}  // namespace
}  // namespace moe::cuda
