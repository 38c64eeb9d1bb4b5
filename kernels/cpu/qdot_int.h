// Per-ISA body of the integer (int8 activation) row kernels of qlinear.cpp for q8 and q4
// (private; no include guard on purpose). qlinear.cpp includes this file once per instruction
// set, each time inside its own namespace, under its own `#pragma GCC target`, with
// MOE_QDOT_INT_ISA set to
//   512: AVX-512 + VNNI (_mm512_dpbusd_epi32), 16 int32 / float lanes;
//   256: AVX2 (_mm256_maddubs_epi16 + _mm256_madd_epi16 for q4, widened madd for q8), 8 lanes.
// The includer has already included <immintrin.h>, <cstring>, <cstdint> and the quant format.
//
// The token row x is quantized by the caller per group g (the weight's group size): sx[b] (f32
// scale), xq (int8, |xq| <= 127) and xs[b] = sx[b] * sum_j xq_bj (f32). Per block b with weight
// scale s and zero z the row dot is s * sx[b] * (sum_j code_j xq_j) - s * z * xs[b]:
// the code dot is an exact int32 vector of lane partial sums (integer adds: any order gives the
// same value), converted to float and accumulated as tot[b % 2] = fma(s * sx[b], lanes, tot[b % 2]);
// corr[b % 2] = fma(s * z, xs[b], corr[b % 2]); the result is hsum(tot0 + tot1) - (corr0 + corr1).
// Every row gets the same float operations whatever the number of rows per call, so the result
// of a row does not depend on how rows are grouped, on T or on the thread count.

#define MOE_QI inline __attribute__((always_inline))
#ifndef MOE_QINT_PREFETCH
#define MOE_QINT_PREFETCH 768
#endif

MOE_QI uint16_t load_u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}
MOE_QI float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}
MOE_QI __m128i load8(const void* p) {
  uint64_t u;
  std::memcpy(&u, p, 8);
  return _mm_cvtsi64_si128(static_cast<long long>(u));
}
MOE_QI __m128i load16(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}
MOE_QI __m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

#if MOE_QDOT_INT_ISA == 512
using VF = __m512;
using VI = __m512i;
constexpr int kIRows = 4;  // rows per call (dot_int_n)
MOE_QI VF vzero() {
  return _mm512_setzero_ps();
}
MOE_QI VF vacc(float s, VI lanes, VF tot) {
  return _mm512_fmadd_ps(_mm512_set1_ps(s), _mm512_cvtepi32_ps(lanes), tot);
}
MOE_QI VF vadd(VF a, VF b) {
  return _mm512_add_ps(a, b);
}
// Fixed order: halves, then quarters, then pairs within 128 bits, then neighbours.
MOE_QI float vhsum(VF v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}

// Lane partial sums of sum_j code_j * xq_j over one block (c: its packed codes).
template <QuantType Q, int G>
MOE_QI VI block_isum(const uint8_t* c, const int8_t* xq) {
  if constexpr (Q == QuantType::kQ8) {
    if constexpr (G >= 64) {
      VI acc = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int i = 0; i < G; i += 64)
        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(c + i), _mm512_loadu_si512(xq + i));
      return acc;
    } else if constexpr (G == 32) {
      return _mm512_inserti64x4(_mm512_setzero_si512(),
                                _mm256_dpbusd_epi32(_mm256_setzero_si256(), load32(c), load32(xq)), 0);
    } else {
      return _mm512_inserti32x4(_mm512_setzero_si512(), _mm_dpbusd_epi32(_mm_setzero_si128(), load16(c), load16(xq)),
                                0);
    }
  } else {  // q4: low nibbles of byte i = code i, high nibbles = code i + G/2
    constexpr int kHalf = G / 2;
    if constexpr (G >= 128) {
      const VI m = _mm512_set1_epi8(15);
      VI acc = _mm512_setzero_si512();
#pragma GCC unroll 2
      for (int i = 0; i < kHalf; i += 64) {
        const VI b = _mm512_loadu_si512(c + i);
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(b, m), _mm512_loadu_si512(xq + i));
        acc =
            _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(b, 4), m), _mm512_loadu_si512(xq + kHalf + i));
      }
      return acc;
    } else if constexpr (G == 64) {
      const __m256i m = _mm256_set1_epi8(15);
      const __m256i b = load32(c);
      const VI codes = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(b, m)),
                                          _mm256_and_si256(_mm256_srli_epi16(b, 4), m), 1);
      return _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, _mm512_loadu_si512(xq));
    } else if constexpr (G == 32) {
      const __m128i m = _mm_set1_epi8(15);
      const __m128i b = load16(c);
      const __m256i codes = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
      return _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes, load32(xq)),
                                0);
    } else {
      const __m128i m = _mm_set1_epi8(15);
      const __m128i b = load8(c);
      const __m128i codes = _mm_unpacklo_epi64(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
      return _mm512_inserti32x4(_mm512_setzero_si512(), _mm_dpbusd_epi32(_mm_setzero_si128(), codes, load16(xq)), 0);
    }
  }
}

#elif MOE_QDOT_INT_ISA == 256
using VF = __m256;
using VI = __m256i;
constexpr int kIRows = 2;
MOE_QI VF vzero() {
  return _mm256_setzero_ps();
}
MOE_QI VF vacc(float s, VI lanes, VF tot) {
  return _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_cvtepi32_ps(lanes), tot);
}
MOE_QI VF vadd(VF a, VF b) {
  return _mm256_add_ps(a, b);
}
MOE_QI float vhsum(VF v) {
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

template <QuantType Q, int G>
MOE_QI VI block_isum(const uint8_t* c, const int8_t* xq) {
  if constexpr (Q == QuantType::kQ8) {
    // Widened to int16 and multiplied pairwise into int32 (madd): 255 * 127 * 2 cannot saturate,
    // unlike maddubs.
    VI acc = _mm256_setzero_si256();
#pragma GCC unroll 16
    for (int i = 0; i < G; i += 16)
      acc = _mm256_add_epi32(
          acc, _mm256_madd_epi16(_mm256_cvtepu8_epi16(load16(c + i)), _mm256_cvtepi8_epi16(load16(xq + i))));
    return acc;
  } else {  // q4: maddubs pairs are <= 2 * 15 * 127, two of them summed still fit int16
    constexpr int kHalf = G / 2;
    const VI ones = _mm256_set1_epi16(1);
    if constexpr (G >= 64) {
      const VI m = _mm256_set1_epi8(15);
      VI acc = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int i = 0; i < kHalf; i += 32) {
        const VI b = load32(c + i);
        const VI p = _mm256_add_epi16(
            _mm256_maddubs_epi16(_mm256_and_si256(b, m), load32(xq + i)),
            _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(b, 4), m), load32(xq + kHalf + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
      }
      return acc;
    } else if constexpr (G == 32) {
      const __m128i m = _mm_set1_epi8(15);
      const __m128i b = load16(c);
      const VI codes = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
      return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, load32(xq)), ones);
    } else {
      const __m128i m = _mm_set1_epi8(15);
      const __m128i b = load8(c);
      const __m128i codes = _mm_unpacklo_epi64(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
      const __m128i s = _mm_madd_epi16(_mm_maddubs_epi16(codes, load16(xq)), _mm_set1_epi16(1));
      return _mm256_inserti128_si256(_mm256_setzero_si256(), s, 0);
    }
  }
}

// Quantizes n_groups groups of g floats (g a multiple of 8) of x: sx = max|x| / 127 per group,
// xq = round-to-nearest-even(x / sx) clamped to +-127 (0 where sx is 0), xs = sx * sum xq. Used by
// both integer paths (this AVX2 instance only), so they quantize x identically.
inline void quantize_groups(const float* x, int64_t n_groups, int g, int8_t* xq, float* sx, float* xs) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 lim = _mm256_set1_ps(127.0f);
  alignas(32) int32_t q[8];
  for (int64_t i = 0; i < n_groups; ++i) {
    const float* p = x + i * g;
    int8_t* o = xq + i * g;
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < g; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(p + j)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float s = _mm_cvtss_f32(h) / 127.0f;
    __m256i sum = _mm256_setzero_si256();
    if (s > 0.0f) {
      const __m256 sv = _mm256_set1_ps(s);
      for (int j = 0; j < g; j += 8) {
        __m256 r =
            _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(p + j), sv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm256_max_ps(_mm256_min_ps(r, lim), _mm256_sub_ps(_mm256_setzero_ps(), lim));
        const __m256i qi = _mm256_cvtps_epi32(r);
        sum = _mm256_add_epi32(sum, qi);
        _mm256_store_si256(reinterpret_cast<__m256i*>(q), qi);
        for (int k = 0; k < 8; ++k) o[j + k] = static_cast<int8_t>(q[k]);
      }
    } else {
      std::memset(o, 0, static_cast<size_t>(g));
    }
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(1, 0, 3, 2)));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(2, 3, 0, 1)));
    sx[i] = s;
    xs[i] = s * static_cast<float>(_mm_cvtsi128_si32(t));
  }
}
#else
#error "MOE_QDOT_INT_ISA must be 512 or 256"
#endif

// R packed rows (row r at row0 + r * stride; nb blocks of format Q, group G) dotted with the
// quantized token row (xq, sx, xs) into out[0 .. R).
template <QuantType Q, int G, int R>
MOE_QI void dot_int(const uint8_t* row0, size_t stride, int64_t nb, const int8_t* xq, const float* sx, const float* xs,
                    float* out) {
  constexpr int64_t kBytes = static_cast<int64_t>(quant_block_bytes(QuantFormat{Q, G}));
  constexpr int64_t kPrefetch = MOE_QINT_PREFETCH;  // bytes ahead in each row
  VF tot0[R], tot1[R];
  float corr0[R], corr1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    tot0[r] = tot1[r] = vzero();
    corr0[r] = corr1[r] = 0.0f;
  }
  const auto step = [&](int64_t b, VF * tot, float* corr) __attribute__((always_inline)) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = row0 + r * stride + b * kBytes;
      _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetch), _MM_HINT_T0);  // no fault past the end
      const float s = h2f(load_u16(blk));
      const float z = h2f(load_u16(blk + 2));
      tot[r] = vacc(s * sx[b], block_isum<Q, G>(blk + 4, xq + b * G), tot[r]);
      corr[r] = __builtin_fmaf(s * z, xs[b], corr[r]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, tot0, corr0);
    step(b + 1, tot1, corr1);
  }
  if (b < nb) step(b, tot0, corr0);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) out[r] = vhsum(vadd(tot0[r], tot1[r])) - (corr0[r] + corr1[r]);
}

template <QuantType Q, int G>
void dot_int1(const uint8_t* row0, size_t stride, int64_t nb, const int8_t* xq, const float* sx, const float* xs,
              float* out) {
  dot_int<Q, G, 1>(row0, stride, nb, xq, sx, xs, out);
}
template <QuantType Q, int G>
void dot_int_n(const uint8_t* row0, size_t stride, int64_t nb, const int8_t* xq, const float* sx, const float* xs,
               float* out) {
  dot_int<Q, G, kIRows>(row0, stride, nb, xq, sx, xs, out);
}

// This ISA's integer kernels, indexed [0: q8, 1: q4][log2(G / 16)].
#define MOE_QINT_GROUPS(fn, Q) \
  { &fn<Q, 16>, &fn<Q, 32>, &fn<Q, 64>, &fn<Q, 128>, &fn<Q, 256> }
inline constexpr QIntKernels kQIntKernels = {
    kIRows,
    {MOE_QINT_GROUPS(dot_int1, QuantType::kQ8), MOE_QINT_GROUPS(dot_int1, QuantType::kQ4)},
    {MOE_QINT_GROUPS(dot_int_n, QuantType::kQ8), MOE_QINT_GROUPS(dot_int_n, QuantType::kQ4)},
};
#undef MOE_QINT_GROUPS
#undef MOE_QI
