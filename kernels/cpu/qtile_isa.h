// Per-ISA body of the kTile16 kernels (layout and arithmetic in qtile.h). Private; no include
// guard on purpose: qlinear.cpp includes it once per instruction set, inside its own namespace and
// `#pragma GCC target`, after qdot_int.h, with MOE_QTILE_ISA set to
//   512: AVX-512 + VNNI, q8, q4, q3 and q2: one zmm = 16 rows x 4 codes, _mm512_dpbusd_epi32
//        (q3: the low-bit plane as q2, then the high-bit plane one bit at a time, counted x4);
//   256: AVX2, q4, q3 and q2: one ymm = 8 rows x 4 codes, _mm256_maddubs_epi16 + _mm256_madd_epi16.
// The includer has already included <immintrin.h>, <cstring>, <cstdint> and the quant format, and
// declared the kernel pointer type TileFn.
//
// A call computes one run of 16 rows for TT token rows at once, so the codes loaded and unpacked
// for a block serve every token of the group. Per row and token the float operations are exactly
// those of qtile.h (two products, two fma, one subtraction), so the result does not depend on TT,
// on the ISA or on which kernel ran.

#define MOE_QT inline __attribute__((always_inline))
#ifndef MOE_QTILE_PREFETCH
#define MOE_QTILE_PREFETCH 1024
#endif

MOE_QT int32_t qt_load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

#if MOE_QTILE_ISA == 512
inline constexpr int kTileTokens = 4;  // token rows per call, at most

template <QuantType Q, int G, int TT>
MOE_QT void tile_tokens(const uint8_t* tile, int64_t nb, const int8_t* xq, const float* sx, const float* xs, int64_t K,
                        float* y, int64_t ldy) {
  constexpr int64_t kBlk = 16 * static_cast<int64_t>(quant_block_bytes(QuantFormat{Q, G}));
  constexpr int kChunks = Q == QuantType::kQ8 ? G / 4 : Q == QuantType::kQ4 ? G / 8 : G / 16;  // q3: low bits
  __m512 tot[TT], corr[TT];
#pragma GCC unroll 4
  for (int t = 0; t < TT; ++t) tot[t] = corr[t] = _mm512_setzero_ps();
  const __m512i m = _mm512_set1_epi8(15);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = tile + b * kBlk;
    const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 z = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
    const uint8_t* c = p + 64;
    __m512i acc0[TT], acc1[TT];  // two chains per token: lo/hi nibbles (q4), even/odd chunks (q8)
#pragma GCC unroll 4
    for (int t = 0; t < TT; ++t) acc0[t] = acc1[t] = _mm512_setzero_si512();
    if constexpr (Q == QuantType::kQ4) {
#pragma GCC unroll 8
      for (int k = 0; k < kChunks; ++k) {
        _mm_prefetch(reinterpret_cast<const char*>(c + 64 * k + MOE_QTILE_PREFETCH), _MM_HINT_T0);
        const __m512i v = _mm512_loadu_si512(c + 64 * k);
        const __m512i lo = _mm512_and_si512(v, m);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
#pragma GCC unroll 4
        for (int t = 0; t < TT; ++t) {
          const int8_t* xo = xq + t * K + b * G + 8 * k;
          acc0[t] = _mm512_dpbusd_epi32(acc0[t], lo, _mm512_set1_epi32(qt_load_i32(xo)));
          acc1[t] = _mm512_dpbusd_epi32(acc1[t], hi, _mm512_set1_epi32(qt_load_i32(xo + 4)));
        }
      }
    } else if constexpr (Q == QuantType::kQ2 || Q == QuantType::kQ3) {  // q3: the low-bit plane here
      const __m512i m2 = _mm512_set1_epi8(3);
#pragma GCC unroll 4
      for (int k = 0; k < kChunks; ++k) {
        _mm_prefetch(reinterpret_cast<const char*>(c + 64 * k + MOE_QTILE_PREFETCH), _MM_HINT_T0);
        const __m512i v = _mm512_loadu_si512(c + 64 * k);
        const __m512i c0 = _mm512_and_si512(v, m2);
        const __m512i c1 = _mm512_and_si512(_mm512_srli_epi16(v, 2), m2);
        const __m512i c2 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m2);
        const __m512i c3 = _mm512_and_si512(_mm512_srli_epi16(v, 6), m2);
#pragma GCC unroll 4
        for (int t = 0; t < TT; ++t) {
          const int8_t* xo = xq + t * K + b * G + 16 * k;
          acc0[t] = _mm512_dpbusd_epi32(acc0[t], c0, _mm512_set1_epi32(qt_load_i32(xo)));
          acc1[t] = _mm512_dpbusd_epi32(acc1[t], c1, _mm512_set1_epi32(qt_load_i32(xo + 4)));
          acc0[t] = _mm512_dpbusd_epi32(acc0[t], c2, _mm512_set1_epi32(qt_load_i32(xo + 8)));
          acc1[t] = _mm512_dpbusd_epi32(acc1[t], c3, _mm512_set1_epi32(qt_load_i32(xo + 12)));
        }
      }
      if constexpr (Q == QuantType::kQ3) {  // high bits: sum_j hi_j x_j, counted 4 times (shift by 2)
        const __m512i one = _mm512_set1_epi8(1);
        const uint8_t* hp = c + 4 * G;
        __m512i acch[TT];
#pragma GCC unroll 4
        for (int t = 0; t < TT; ++t) acch[t] = _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int k = 0; k < G / 32; ++k) {
          const __m512i v = _mm512_loadu_si512(hp + 64 * k);
#pragma GCC unroll 8
          for (int bit = 0; bit < 8; ++bit) {
            const __m512i cb = _mm512_and_si512(_mm512_srli_epi16(v, bit), one);
#pragma GCC unroll 4
            for (int t = 0; t < TT; ++t)
              acch[t] = _mm512_dpbusd_epi32(acch[t], cb,
                                            _mm512_set1_epi32(qt_load_i32(xq + t * K + b * G + 32 * k + 4 * bit)));
          }
        }
#pragma GCC unroll 4
        for (int t = 0; t < TT; ++t) acc0[t] = _mm512_add_epi32(acc0[t], _mm512_slli_epi32(acch[t], 2));
      }
    } else {
#pragma GCC unroll 8
      for (int k = 0; k < kChunks; k += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(c + 64 * k + MOE_QTILE_PREFETCH), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + 64 * k + 64 + MOE_QTILE_PREFETCH), _MM_HINT_T0);
        const __m512i v0 = _mm512_loadu_si512(c + 64 * k);
        const __m512i v1 = _mm512_loadu_si512(c + 64 * k + 64);
#pragma GCC unroll 4
        for (int t = 0; t < TT; ++t) {
          const int8_t* xo = xq + t * K + b * G + 4 * k;
          acc0[t] = _mm512_dpbusd_epi32(acc0[t], v0, _mm512_set1_epi32(qt_load_i32(xo)));
          acc1[t] = _mm512_dpbusd_epi32(acc1[t], v1, _mm512_set1_epi32(qt_load_i32(xo + 4)));
        }
      }
    }
    const __m512 sz = _mm512_mul_ps(s, z);
#pragma GCC unroll 4
    for (int t = 0; t < TT; ++t) {
      const __m512 isum = _mm512_cvtepi32_ps(_mm512_add_epi32(acc0[t], acc1[t]));
      tot[t] = _mm512_fmadd_ps(_mm512_mul_ps(s, _mm512_set1_ps(sx[t * nb + b])), isum, tot[t]);
      corr[t] = _mm512_fmadd_ps(sz, _mm512_set1_ps(xs[t * nb + b]), corr[t]);
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < TT; ++t) _mm512_storeu_ps(y + t * ldy, _mm512_sub_ps(tot[t], corr[t]));
}

#elif MOE_QTILE_ISA == 256
inline constexpr int kTileTokens = 2;  // 16 ymm: two tokens' accumulators fit, four would spill

template <QuantType Q, int G, int TT>
MOE_QT void tile_tokens(const uint8_t* tile, int64_t nb, const int8_t* xq, const float* sx, const float* xs, int64_t K,
                        float* y, int64_t ldy) {
  static_assert(Q != QuantType::kQ8, "the AVX2 tile kernel serves q4, q3 and q2");
  constexpr int64_t kBlk = 16 * static_cast<int64_t>(quant_block_bytes(QuantFormat{Q, G}));
  constexpr int kChunks = Q == QuantType::kQ4 ? G / 8 : G / 16;
  __m256 tot[TT][2], corr[TT][2];  // [token][rows 0-7, rows 8-15]
#pragma GCC unroll 2
  for (int t = 0; t < TT; ++t) tot[t][0] = tot[t][1] = corr[t][0] = corr[t][1] = _mm256_setzero_ps();
  const __m256i m = _mm256_set1_epi8(15);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = tile + b * kBlk;
    const uint8_t* c = p + 64;
    __m256i acc[TT][2];
#pragma GCC unroll 2
    for (int t = 0; t < TT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
    if constexpr (Q == QuantType::kQ2 || Q == QuantType::kQ3) {  // q3: the low-bit plane here
      const __m256i m2 = _mm256_set1_epi8(3);
#pragma GCC unroll 4
      for (int k = 0; k < kChunks; ++k) {
        _mm_prefetch(reinterpret_cast<const char*>(c + 64 * k + MOE_QTILE_PREFETCH), _MM_HINT_T0);
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * k + 32 * h));
          const __m256i c0 = _mm256_and_si256(v, m2), c1 = _mm256_and_si256(_mm256_srli_epi16(v, 2), m2);
          const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m2);
          const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(v, 6), m2);
#pragma GCC unroll 2
          for (int t = 0; t < TT; ++t) {
            const int8_t* xo = xq + t * K + b * G + 16 * k;
            // |pair| <= 2 * 3 * 127; four pairs summed still fit int16: exact
            const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(c0, _mm256_set1_epi32(qt_load_i32(xo))),
                                                 _mm256_maddubs_epi16(c1, _mm256_set1_epi32(qt_load_i32(xo + 4))));
            const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(c2, _mm256_set1_epi32(qt_load_i32(xo + 8))),
                                                 _mm256_maddubs_epi16(c3, _mm256_set1_epi32(qt_load_i32(xo + 12))));
            acc[t][h] = _mm256_add_epi32(acc[t][h], _mm256_madd_epi16(_mm256_add_epi16(p01, p23), ones));
          }
        }
      }
    }
    if constexpr (Q == QuantType::kQ3) {  // high bits: sum_j hi_j x_j, counted 4 times (shift by 2)
      const __m256i one = _mm256_set1_epi8(1);
      const uint8_t* hp = c + 4 * G;
#pragma GCC unroll 2
      for (int k = 0; k < G / 32; ++k)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hp + 64 * k + 32 * h));
#pragma GCC unroll 2
          for (int t = 0; t < TT; ++t) {
            const int8_t* xo = xq + t * K + b * G + 32 * k;
            __m256i s16 = _mm256_setzero_si256();  // 8 planes of pairs <= 2 * 127: exact in int16
#pragma GCC unroll 8
            for (int bit = 0; bit < 8; ++bit)
              s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, bit), one),
                                                               _mm256_set1_epi32(qt_load_i32(xo + 4 * bit))));
            acc[t][h] = _mm256_add_epi32(acc[t][h], _mm256_slli_epi32(_mm256_madd_epi16(s16, ones), 2));
          }
        }
    }
    // q4: the pair sums of a chunk (lo and hi nibbles: |sum| <= 2 * 2 * 15 * 127 = 7620) add up in
    // int16 over 4 chunks (<= 30480, exact) before one widening madd per 4 chunks.
    constexpr int kQ4Run = kChunks < 4 ? kChunks : 4;  // kChunks (G / 8) is 2 or a multiple of 4
    if constexpr (Q == QuantType::kQ4) {
#pragma GCC unroll 2
      for (int k0 = 0; k0 < kChunks; k0 += kQ4Run) {
        __m256i s16[TT][2];
#pragma GCC unroll 2
        for (int t = 0; t < TT; ++t) s16[t][0] = s16[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 1
        for (int k = k0; k < k0 + kQ4Run; ++k) {
          _mm_prefetch(reinterpret_cast<const char*>(c + 64 * k + MOE_QTILE_PREFETCH), _MM_HINT_T0);
          const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * k));
          const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * k + 32));
          const __m256i lo0 = _mm256_and_si256(v0, m), hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m);
          const __m256i lo1 = _mm256_and_si256(v1, m), hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m);
#pragma GCC unroll 2
          for (int t = 0; t < TT; ++t) {
            const int8_t* xo = xq + t * K + b * G + 8 * k;
            const __m256i xl = _mm256_set1_epi32(qt_load_i32(xo)), xh = _mm256_set1_epi32(qt_load_i32(xo + 4));
            s16[t][0] = _mm256_add_epi16(
                s16[t][0], _mm256_add_epi16(_mm256_maddubs_epi16(lo0, xl), _mm256_maddubs_epi16(hi0, xh)));
            s16[t][1] = _mm256_add_epi16(
                s16[t][1], _mm256_add_epi16(_mm256_maddubs_epi16(lo1, xl), _mm256_maddubs_epi16(hi1, xh)));
          }
        }
#pragma GCC unroll 2
        for (int t = 0; t < TT; ++t) {
          acc[t][0] = _mm256_add_epi32(acc[t][0], _mm256_madd_epi16(s16[t][0], ones));
          acc[t][1] = _mm256_add_epi32(acc[t][1], _mm256_madd_epi16(s16[t][1], ones));
        }
      }
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h)));
      const __m256 z = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32 + 16 * h)));
      const __m256 sz = _mm256_mul_ps(s, z);
#pragma GCC unroll 2
      for (int t = 0; t < TT; ++t) {
        tot[t][h] =
            _mm256_fmadd_ps(_mm256_mul_ps(s, _mm256_set1_ps(sx[t * nb + b])), _mm256_cvtepi32_ps(acc[t][h]), tot[t][h]);
        corr[t][h] = _mm256_fmadd_ps(sz, _mm256_set1_ps(xs[t * nb + b]), corr[t][h]);
      }
    }
  }
#pragma GCC unroll 2
  for (int t = 0; t < TT; ++t) {
    _mm256_storeu_ps(y + t * ldy, _mm256_sub_ps(tot[t][0], corr[t][0]));
    _mm256_storeu_ps(y + t * ldy + 8, _mm256_sub_ps(tot[t][1], corr[t][1]));
  }
}
#else
#error "MOE_QTILE_ISA must be 512 or 256"
#endif

// One run of 16 rows dotted with T token rows into y[t * ldy + r], r = 0..15; tokens in groups of
// kTileTokens (the run's codes stay in L1 between groups).
template <QuantType Q, int G>
void tile_dot(const uint8_t* tile, int64_t nb, const int8_t* xq, const float* sx, const float* xs, int64_t T, int64_t K,
              float* y, int64_t ldy) {
  int64_t t = 0;
  for (; t + kTileTokens <= T; t += kTileTokens)
    tile_tokens<Q, G, kTileTokens>(tile, nb, xq + t * K, sx + t * nb, xs + t * nb, K, y + t * ldy, ldy);
  if constexpr (kTileTokens > 3) {
    if (t + 3 == T) {
      tile_tokens<Q, G, 3>(tile, nb, xq + t * K, sx + t * nb, xs + t * nb, K, y + t * ldy, ldy);
      return;
    }
  }
  if constexpr (kTileTokens > 2) {
    if (t + 2 <= T) {
      tile_tokens<Q, G, 2>(tile, nb, xq + t * K, sx + t * nb, xs + t * nb, K, y + t * ldy, ldy);
      t += 2;
    }
  }
  if (t < T) tile_tokens<Q, G, 1>(tile, nb, xq + t * K, sx + t * nb, xs + t * nb, K, y + t * ldy, ldy);
}

// This ISA's kernels, indexed [QuantType][log2(G / 16)]; null where it has none (q8 on AVX2,
// whose products overflow maddubs; q3 g16, which has no tiled layout).
#define MOE_QTILE_GROUPS(Q) \
  { &tile_dot<Q, 16>, &tile_dot<Q, 32>, &tile_dot<Q, 64>, &tile_dot<Q, 128>, &tile_dot<Q, 256> }
inline constexpr TileFn kTileKernels[4][5] = {
#if MOE_QTILE_ISA == 512
    MOE_QTILE_GROUPS(QuantType::kQ8),
#else
    {},
#endif
    MOE_QTILE_GROUPS(QuantType::kQ4),
    {nullptr, &tile_dot<QuantType::kQ3, 32>, &tile_dot<QuantType::kQ3, 64>, &tile_dot<QuantType::kQ3, 128>,
     &tile_dot<QuantType::kQ3, 256>},
    MOE_QTILE_GROUPS(QuantType::kQ2)};
static_assert(static_cast<int>(QuantType::kQ8) == 0 && static_cast<int>(QuantType::kQ4) == 1 &&
              static_cast<int>(QuantType::kQ3) == 2 && static_cast<int>(QuantType::kQ2) == 3);
#undef MOE_QTILE_GROUPS

#undef MOE_QT
