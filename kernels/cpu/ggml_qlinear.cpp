// ggml block formats on the CPU. Two paths:
//  - integer (AVX2 and AVX-512 ISAs; Q8_0, Q4_0, Q4_K, Q6_K): each token row of x is quantized once per
//    call to int8 blocks of 32 (Q8_0-style: d = amax / 127, round to nearest) with the block
//    sums, and every weight block is multiplied with it in integer arithmetic
//    (_mm256_maddubs_epi16 + _mm256_madd_epi16), as ggml's ggml_vec_dot_*_q8_* do. It differs from
//    the f32 path by the rounding of x to int8 (|x - xq| <= d / 2 per element).
//  - f32 (every type; the only path on the portable ISA, with MOE_QLINEAR_FLOAT=1, and for the
//    types without an integer kernel): each weight row dequantized once per call with the scalar
//    reference (ggml_quants.h), then one f32 dot product per token row.
// Both are multithreaded over weight rows; the arithmetic of one output does not depend on T or on
// the thread count.
#include "kernels/cpu/ggml_qlinear.h"

#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/qlinear_isa.h"
#include "kernels/quant/ggml_quants.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MOE_GGML_X86 1
#include <immintrin.h>
#else
#define MOE_GGML_X86 0
#endif

namespace moe::cpu {

namespace {

constexpr int64_t kMinParallelWork = int64_t{1} << 16;

float bias_at(WeightRef b, int64_t n) {
  if (b.data == nullptr) return 0.0f;
  switch (compute_type(b.dtype)) {
    case ComputeType::kF32: return static_cast<const float*>(b.data)[n];
    case ComputeType::kF16: return f16_to_f32(static_cast<const uint16_t*>(b.data)[n]);
    case ComputeType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(b.data)[n]);
  }
  return 0.0f;
}

[[maybe_unused]] float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// x quantized per 32: qs (T, K) int8, d (T, K / 32), sum (T, K / 32) = sum of the 32 codes.
struct XQ8 {
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int32_t> sum;
};

[[maybe_unused]] void quantize_x(const float* x, int64_t T, int64_t K, XQ8& q) {
  const int64_t nb = K / 32;
  q.qs.resize(static_cast<size_t>(T * K));
  q.d.resize(static_cast<size_t>(T * nb));
  q.sum.resize(static_cast<size_t>(T * nb));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * K + b * 32;
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
      const float d = amax / 127.0f;
      const float id = d > 0.0f ? 1.0f / d : 0.0f;
      int8_t* qb = q.qs.data() + t * K + b * 32;
      int32_t s = 0;
      for (int j = 0; j < 32; ++j) {
        const int v = static_cast<int>(std::nearbyint(xb[j] * id));
        qb[j] = static_cast<int8_t>(v < -127 ? -127 : (v > 127 ? 127 : v));
        s += qb[j];
      }
      q.d[static_cast<size_t>(t * nb + b)] = d;
      q.sum[static_cast<size_t>(t * nb + b)] = s;
    }
  }
}

void f32_path(const float* x, int64_t T, int64_t K, const uint8_t* w, QuantType type, int64_t N, WeightRef bias,
              float* y) {
  const size_t row_bytes = quant_row_bytes(QuantFormat{type, ggml_block(type).elems}, K);
#pragma omp parallel if (T * N * K >= kMinParallelWork)
  {
    // Each OpenMP thread's row buffer, kept between calls: no allocation per decode step.
    thread_local std::vector<float> row;
    if (row.size() < static_cast<size_t>(K)) row.resize(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      ggml_dequantize_row(type, w + static_cast<size_t>(n) * row_bytes, K, row.data());
      const float b = bias_at(bias, n);
      for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * K;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t k = 0;
        for (; k + 8 <= K; k += 8)
          for (int j = 0; j < 8; ++j) acc[j] += xt[k + j] * row[static_cast<size_t>(k + j)];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; k < K; ++k) s += xt[k] * row[static_cast<size_t>(k)];
        y[t * N + n] = s + b;
      }
    }
  }
}

#if MOE_GGML_X86
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace avx2 {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// 8 int32 partial sums of u8 codes (0..127) times int8 x.
inline __m256i dot_u8_i8(__m256i u, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}
// Signed int8 codes times int8 x: |c| * sign(x, c).
inline __m256i dot_i8_i8(__m256i c, __m256i x) {
  return dot_u8_i8(_mm256_sign_epi8(c, c), _mm256_sign_epi8(x, c));
}

// One weight row times one quantized token row.
float row_q8_0(const uint8_t* w, const int8_t* xq, const float* xd, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * 34;
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * 32));
    const __m256 s = _mm256_cvtepi32_ps(dot_i8_i8(c, xv));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(blk) * xd[b]), s, acc);
  }
  return hsum(acc);
}
float row_q4_0(const uint8_t* w, const int8_t* xq, const float* xd, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0xF), off = _mm256_set1_epi8(8);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * 18;
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    const __m256i c = _mm256_sub_epi8(_mm256_and_si256(both, m4), off);
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * 32));
    const __m256 s = _mm256_cvtepi32_ps(dot_i8_i8(c, xv));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(blk) * xd[b]), s, acc);
  }
  return hsum(acc);
}
// Q4_K: per 64 weights, 32 bytes of codes: low nibbles the first 32 (sub-block 2i), high nibbles
// the next 32 (2i + 1); w = d*sc*q - dmin*m, so dot = d*sc*sum(q*xq)*dx - dmin*m*sum(xq)*dx.
float row_q4_k(const uint8_t* w, const int8_t* xq, const float* xd, const int32_t* xs, int64_t nsb) {
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  const __m256i m4 = _mm256_set1_epi8(0xF);
  for (int64_t b = 0; b < nsb; ++b) {
    const uint8_t* blk = w + b * 144;
    const float d = f16_at(blk), dmin = f16_at(blk + 2);
    const uint8_t* q = blk + 16;
    const int8_t* xb = xq + b * 256;
    const float* xdb = xd + b * 8;
    const int32_t* xsb = xs + b * 8;
    for (int i = 0; i < 4; ++i) {
      uint8_t sc0, m0, sc1, m1;
      ggml_scale_min_k4(2 * i, blk + 4, &sc0, &m0);
      ggml_scale_min_k4(2 * i + 1, blk + 4, &sc1, &m1);
      const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i));
      const __m256i lo = _mm256_and_si256(qv, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 64 * i));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 64 * i + 32));
      const __m256 s0 = _mm256_cvtepi32_ps(dot_u8_i8(lo, x0));
      const __m256 s1 = _mm256_cvtepi32_ps(dot_u8_i8(hi, x1));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(sc0) * xdb[2 * i]), s0, acc);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(sc1) * xdb[2 * i + 1]), s1, acc);
      mins += dmin * static_cast<float>(m0) * xdb[2 * i] * static_cast<float>(xsb[2 * i]) +
              dmin * static_cast<float>(m1) * xdb[2 * i + 1] * static_cast<float>(xsb[2 * i + 1]);
    }
  }
  return hsum(acc) - mins;
}

// Q6_K: per 128 weights, ql 64 bytes, qh 32 bytes, 8 int8 scales of 16 weights each; code
// q - 32 (-32 .. 31). One 32-weight piece has two scales: the low 128 bits of the int32 partial
// sums cover its first 16 weights, the high 128 bits the next 16.
float row_q6_k(const uint8_t* w, const int8_t* xq, const float* xd, int64_t nsb) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  for (int64_t b = 0; b < nsb; ++b) {
    const uint8_t* blk = w + b * 210;
    const float d = f16_at(blk + 208);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk + 64 * h;
      const uint8_t* qh = blk + 128 + 32 * h;
      const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192 + 8 * h);
      const __m256i qla = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i qlb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i qhv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      __m256i codes[4];
      codes[0] = _mm256_or_si256(_mm256_and_si256(qla, m4), _mm256_slli_epi16(_mm256_and_si256(qhv, m2), 4));
      codes[1] = _mm256_or_si256(_mm256_and_si256(qlb, m4),
                                 _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qhv, 2), m2), 4));
      codes[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qla, 4), m4),
                                 _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qhv, 4), m2), 4));
      codes[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlb, 4), m4),
                                 _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qhv, 6), m2), 4));
      for (int j = 0; j < 4; ++j) {
        const int64_t xb = b * 8 + h * 4 + j;  // x block of 32
        const __m256i c = _mm256_sub_epi8(codes[j], off);
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + xb * 32));
        const __m256 s = _mm256_cvtepi32_ps(dot_i8_i8(c, xv));
        const float dx = d * xd[xb];
        const __m256 scale = _mm256_set_m128(_mm_set1_ps(dx * static_cast<float>(sc[2 * j + 1])),
                                             _mm_set1_ps(dx * static_cast<float>(sc[2 * j])));
        acc = _mm256_fmadd_ps(scale, s, acc);
      }
    }
  }
  return hsum(acc);
}

}  // namespace avx2
#pragma GCC pop_options
#endif

[[maybe_unused]] bool has_int_path(QuantType t) {
  switch (t) {
    case QuantType::kGgmlQ8_0:
    case QuantType::kGgmlQ4_0:
    case QuantType::kGgmlQ4_K:
    case QuantType::kGgmlQ6_K: return true;
    case QuantType::kQ8:
    case QuantType::kQ4:
    case QuantType::kQ3:
    case QuantType::kQ2:
    case QuantType::kGgmlQ4_1:
    case QuantType::kGgmlQ5_0:
    case QuantType::kGgmlQ5_1:
    case QuantType::kGgmlQ2_K:
    case QuantType::kGgmlQ3_K:
    case QuantType::kGgmlQ5_K:
    case QuantType::kGgmlIQ4_XS: return false;
  }
  return false;
}

}  // namespace

bool ggml_qlinear_int_path(QuantType type) {
#if MOE_GGML_X86
  return has_int_path(type) && qisa_current() != QIsa::kPortable && !qlinear_float_forced();
#else
  (void)type;
  return false;
#endif
}

void ggml_qlinear(const float* x, int64_t T, int64_t K, const uint8_t* w, QuantType type, int64_t N, WeightRef bias,
                  float* y) {
  assert(is_ggml(type) && K % ggml_block(type).elems == 0);
  if (!ggml_qlinear_int_path(type)) {
    f32_path(x, T, K, w, type, N, bias, y);
    return;
  }
#if MOE_GGML_X86
  thread_local XQ8 xq8;  // reused by the calling thread: no allocation per decode step
  quantize_x(x, T, K, xq8);
  const XQ8& q = xq8;  // the OpenMP workers read the caller's copy, not their own thread_local
  const size_t row_bytes = quant_row_bytes(QuantFormat{type, ggml_block(type).elems}, K);
  const int64_t nb = K / 32;
#pragma omp parallel for schedule(static) if (T * N * K >= kMinParallelWork)
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* wr = w + static_cast<size_t>(n) * row_bytes;
    const float b = bias_at(bias, n);
    for (int64_t t = 0; t < T; ++t) {
      const int8_t* xq = q.qs.data() + t * K;
      const float* xd = q.d.data() + t * nb;
      float s = 0.0f;
      switch (type) {
        case QuantType::kGgmlQ8_0: s = avx2::row_q8_0(wr, xq, xd, nb); break;
        case QuantType::kGgmlQ4_0: s = avx2::row_q4_0(wr, xq, xd, nb); break;
        case QuantType::kGgmlQ4_K: s = avx2::row_q4_k(wr, xq, xd, q.sum.data() + t * nb, K / 256); break;
        case QuantType::kGgmlQ6_K: s = avx2::row_q6_k(wr, xq, xd, K / 256); break;
        case QuantType::kQ8:
        case QuantType::kQ4:
        case QuantType::kQ3:
        case QuantType::kQ2:
        case QuantType::kGgmlQ4_1:
        case QuantType::kGgmlQ5_0:
        case QuantType::kGgmlQ5_1:
        case QuantType::kGgmlQ2_K:
        case QuantType::kGgmlQ3_K:
        case QuantType::kGgmlQ5_K:
        case QuantType::kGgmlIQ4_XS: break;
      }
      y[t * N + n] = s + b;
    }
  }
#endif
}

}  // namespace moe::cpu
