// Per-ISA body of the quantized row kernels of qlinear.cpp (private; no include guard on purpose).
// qlinear.cpp includes this file once per instruction set, each time inside its own namespace,
// under its own `#pragma GCC target`, with MOE_QDOT_ISA set to
//   512: AVX-512 (x86-64-v4), 16 float lanes;  256: AVX2/FMA/F16C (x86-64-v3), 8 lanes;
//   0:   portable C++ (whatever the baseline target vectorises it to), 8 lanes.
// The includer has already included <immintrin.h> (x86), <cstring>, <cstdint> and the two
// moe headers below, so that no standard-library code is compiled under the ISA's target.
//
// One row of K weights is nb = K / G blocks; with xs[b] = sum of x over group b (computed once
// per token row by the caller), the row dot is
//   sum_b s_b * (sum_j code_bj * x_bj) - sum_b s_b * z_b * xs[b]
// accumulated as: per block, the code dot in A <= 4 vector accumulators (vector v of the block
// goes to accumulator v / (nv / A), each accumulator adding its vectors in increasing v), combined
// as ((d0 + d1) + (d2 + d3)); then tot[b % 2] = fma(s_b, d, tot[b % 2]) and
// corr[b % 2] = fma(s_b * z_b, xs[b], corr[b % 2]); result hsum(tot0 + tot1) - (corr0 + corr1).
// The decode path (dot_packed: codes unpacked in registers) and the prefill path (unpack_row
// once, then dot_unpacked per token) run this same sequence of float operations through the
// same templates, and the codes are small integers (exact in float), so for one ISA the two give
// bit-identical results.

// ---- Vector primitives --------------------------------------------------------------------------
#define MOE_QI inline __attribute__((always_inline))

#if MOE_QDOT_ISA == 512
using V = __m512;
constexpr int kW = 16;
constexpr int kRows = 4;  // rows per decode call (dot_packed_n)
MOE_QI V vzero() {
  return _mm512_setzero_ps();
}
MOE_QI V vload(const float* p) {
  return _mm512_loadu_ps(p);
}
MOE_QI void vstore(float* p, V v) {
  _mm512_storeu_ps(p, v);
}
MOE_QI V vset1(float s) {
  return _mm512_set1_ps(s);
}
MOE_QI V vadd(V a, V b) {
  return _mm512_add_ps(a, b);
}
MOE_QI V vmul(V a, V b) {
  return _mm512_mul_ps(a, b);
}
MOE_QI V vfma(V a, V b, V c) {
  return _mm512_fmadd_ps(a, b, c);
}
// Fixed order: halves, then quarters, then pairs within 128 bits, then neighbours.
MOE_QI float vhsum(V v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}
MOE_QI float sfma(float a, float b, float c) {
  return __builtin_fmaf(a, b, c);
}
MOE_QI float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

// 16 bytes -> 16 dwords; (e >> shift) & mask per lane.
MOE_QI __m512i zext16(__m128i q) {
  return _mm512_cvtepu8_epi32(q);
}
MOE_QI __m128i load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
MOE_QI __m512i bits(__m512i e, __m512i shift, int mask) {
  return _mm512_and_si512(_mm512_srlv_epi32(e, shift), _mm512_set1_epi32(mask));
}
MOE_QI __m128i dup8(const uint8_t* p) {  // 8 bytes, twice
  uint64_t u;
  std::memcpy(&u, p, 8);
  return _mm_set1_epi64x(static_cast<long long>(u));
}
MOE_QI __m128i dup4(const uint8_t* p) {  // 4 bytes, four times
  uint32_t u;
  std::memcpy(&u, p, 4);
  return _mm_set1_epi32(static_cast<int>(u));
}

// The low two bits of codes 16v .. 16v + 15 of a q2 (or q3) block of G codes.
template <int G>
MOE_QI __m512i low2(const uint8_t* c, int v) {
  if constexpr (G == 16) {  // one vector, quarters of 4 codes: lanes 4a .. 4a + 3 from bytes 0..3 >> 2a
    return bits(zext16(dup4(c)), _mm512_set_epi32(6, 6, 6, 6, 4, 4, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0), 3);
  } else if constexpr (G == 32) {  // quarters of 8 codes: vector v holds quarters 2v, 2v + 1
    const int s = 4 * v;
    return bits(zext16(dup8(c)),
                _mm512_set_epi32(s + 2, s + 2, s + 2, s + 2, s + 2, s + 2, s + 2, s + 2, s, s, s, s, s, s, s, s), 3);
  } else {  // quarters of >= 16 codes: vector v lies in quarter a
    constexpr int kQuarter = G / 4;
    const int a = 16 * v / kQuarter;
    return bits(zext16(load16(c + 16 * v - a * kQuarter)), _mm512_set1_epi32(2 * a), 3);
  }
}

// Codes 16v .. 16v + 15 of one block (c: its packed codes) as floats.
template <QuantType Q, int G>
MOE_QI V unpack(const uint8_t* c, int v) {
  __m512i e;
  if constexpr (Q == QuantType::kQ8) {
    e = zext16(load16(c + 16 * v));
  } else if constexpr (Q == QuantType::kQ4) {
    if constexpr (G == 16) {  // bytes 0..7: low nibbles = codes 0..7, high = codes 8..15
      e = bits(zext16(dup8(c)), _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0), 15);
    } else {
      constexpr int kHalf = G / 2;
      const bool hi = 16 * v >= kHalf;
      e = bits(zext16(load16(c + 16 * v - (hi ? kHalf : 0))), _mm512_set1_epi32(hi ? 4 : 0), 15);
    }
  } else {
    e = low2<G>(c, v);
    if constexpr (Q == QuantType::kQ3) {  // bit b of high byte i = bit 2 of code 8i + b
      uint16_t m;
      std::memcpy(&m, c + G / 4 + 2 * v, 2);
      e = _mm512_mask_or_epi32(e, static_cast<__mmask16>(m), e, _mm512_set1_epi32(4));
    }
  }
  return _mm512_cvtepi32_ps(e);
}

#elif MOE_QDOT_ISA == 256
using V = __m256;
constexpr int kW = 8;
constexpr int kRows = 2;
MOE_QI V vzero() {
  return _mm256_setzero_ps();
}
MOE_QI V vload(const float* p) {
  return _mm256_loadu_ps(p);
}
MOE_QI void vstore(float* p, V v) {
  _mm256_storeu_ps(p, v);
}
MOE_QI V vset1(float s) {
  return _mm256_set1_ps(s);
}
MOE_QI V vadd(V a, V b) {
  return _mm256_add_ps(a, b);
}
MOE_QI V vmul(V a, V b) {
  return _mm256_mul_ps(a, b);
}
MOE_QI V vfma(V a, V b, V c) {
  return _mm256_fmadd_ps(a, b, c);
}
MOE_QI float vhsum(V v) {
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}
MOE_QI float sfma(float a, float b, float c) {
  return __builtin_fmaf(a, b, c);
}
MOE_QI float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

// 8 bytes -> 8 dwords; (e >> shift) & mask per lane.
MOE_QI __m256i zext8(__m128i q) {
  return _mm256_cvtepu8_epi32(q);
}
MOE_QI __m128i load8(const uint8_t* p) {
  uint64_t u;
  std::memcpy(&u, p, 8);
  return _mm_cvtsi64_si128(static_cast<long long>(u));
}
MOE_QI __m256i bits(__m256i e, __m256i shift, int mask) {
  return _mm256_and_si256(_mm256_srlv_epi32(e, shift), _mm256_set1_epi32(mask));
}

template <int G>
MOE_QI __m256i low2(const uint8_t* c, int v) {
  if constexpr (G == 16) {  // quarters of 4 codes: vector v holds quarters 2v, 2v + 1 (bytes 0..3)
    uint32_t u;
    std::memcpy(&u, c, 4);
    const int s = 4 * v;
    return bits(zext8(_mm_set1_epi32(static_cast<int>(u))), _mm256_set_epi32(s + 2, s + 2, s + 2, s + 2, s, s, s, s),
                3);
  } else {  // quarters of >= 8 codes: vector v lies in quarter a
    constexpr int kQuarter = G / 4;
    const int a = 8 * v / kQuarter;
    return bits(zext8(load8(c + 8 * v - a * kQuarter)), _mm256_set1_epi32(2 * a), 3);
  }
}

// Codes 8v .. 8v + 7 of one block (c: its packed codes) as floats.
template <QuantType Q, int G>
MOE_QI V unpack(const uint8_t* c, int v) {
  __m256i e;
  if constexpr (Q == QuantType::kQ8) {
    e = zext8(load8(c + 8 * v));
  } else if constexpr (Q == QuantType::kQ4) {
    constexpr int kHalf = G / 2;
    const bool hi = 8 * v >= kHalf;
    e = bits(zext8(load8(c + 8 * v - (hi ? kHalf : 0))), _mm256_set1_epi32(hi ? 4 : 0), 15);
  } else {
    e = low2<G>(c, v);
    if constexpr (Q == QuantType::kQ3) {  // high byte v holds bit 2 of codes 8v .. 8v + 7
      const __m256i lane_bit = _mm256_set_epi32(128, 64, 32, 16, 8, 4, 2, 1);
      const __m256i h = _mm256_and_si256(_mm256_set1_epi32(c[G / 4 + v]), lane_bit);
      e = _mm256_or_si256(e, _mm256_and_si256(_mm256_cmpeq_epi32(h, lane_bit), _mm256_set1_epi32(4)));
    }
  }
  return _mm256_cvtepi32_ps(e);
}

#else
// Portable: 8 lanes as plain arrays; element-wise loops that the compiler may vectorise (no
// reassociation is needed for that, so the order of operations is the one written).
constexpr int kW = 8;
constexpr int kRows = 2;
struct V {
  float l[kW];
};
MOE_QI V vzero() {
  return V{};
}
MOE_QI V vload(const float* p) {
  V r;
  for (int i = 0; i < kW; ++i) r.l[i] = p[i];
  return r;
}
MOE_QI void vstore(float* p, V v) {
  for (int i = 0; i < kW; ++i) p[i] = v.l[i];
}
MOE_QI V vset1(float s) {
  V r;
  for (int i = 0; i < kW; ++i) r.l[i] = s;
  return r;
}
MOE_QI V vadd(V a, V b) {
  for (int i = 0; i < kW; ++i) a.l[i] += b.l[i];
  return a;
}
MOE_QI V vmul(V a, V b) {
  for (int i = 0; i < kW; ++i) a.l[i] *= b.l[i];
  return a;
}
// Not fused: a * b rounds, then + c (the baseline target has no FMA instruction).
MOE_QI V vfma(V a, V b, V c) {
  for (int i = 0; i < kW; ++i) c.l[i] += a.l[i] * b.l[i];
  return c;
}
MOE_QI float vhsum(V v) {
  for (int w = kW / 2; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) v.l[i] += v.l[i + w];
  return v.l[0];
}
MOE_QI float sfma(float a, float b, float c) {
  return a * b + c;
}
MOE_QI float h2f(uint16_t h) {
  return f16_to_f32(h);
}

// Code j of one block, straight from the layout of quant_format.h.
template <QuantType Q, int G>
MOE_QI uint32_t code_at(const uint8_t* c, int j) {
  if constexpr (Q == QuantType::kQ8) {
    return c[j];
  } else if constexpr (Q == QuantType::kQ4) {
    return j < G / 2 ? c[j] & 15u : static_cast<uint32_t>(c[j - G / 2] >> 4);
  } else {
    const uint32_t lo = (static_cast<uint32_t>(c[j % (G / 4)]) >> (2 * (j / (G / 4)))) & 3u;
    if constexpr (Q == QuantType::kQ2) return lo;
    return lo | ((static_cast<uint32_t>(c[G / 4 + j / 8]) >> (j % 8)) & 1u) << 2;
  }
}

template <QuantType Q, int G>
MOE_QI V unpack(const uint8_t* c, int v) {
  V r;
  for (int i = 0; i < kW; ++i) r.l[i] = static_cast<float>(code_at<Q, G>(c, kW * v + i));
  return r;
}
#endif

// ---- Row kernels (shared by every ISA) ----------------------------------------------------------

// Vector v of a block's codes: unpacked from the packed bytes, or read from an unpacked row.
template <QuantType Q, int G>
struct PackedCodes {
  const uint8_t* c;
  MOE_QI V operator()(int v) const { return unpack<Q, G>(c, v); }
};
struct FloatCodes {
  const float* c;
  MOE_QI V operator()(int v) const { return vload(c + kW * v); }
};

// d[r] = sum_j code_rj * x_j over one block of each of R rows, as vectors of partial sums (order
// in the file comment; every row gets the same operations whatever R, and each x vector is
// loaded once for all R rows).
template <int G, int R, class Codes>
MOE_QI void block_dots(const Codes* codes, const float* xb, V* d) {
  constexpr int kNv = G / kW;
  constexpr int kA = kNv < 4 ? kNv : 4;
  constexpr int kS = kNv / kA;
  V acc[R][kA];
#pragma GCC unroll 4
  for (int a = 0; a < kA; ++a) {
    const V xv = vload(xb + a * kS * kW);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r][a] = vmul(codes[r](a * kS), xv);
  }
#pragma GCC unroll 16
  for (int u = 1; u < kS; ++u)
#pragma GCC unroll 4
    for (int a = 0; a < kA; ++a) {
      const V xv = vload(xb + (u + a * kS) * kW);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][a] = vfma(codes[r](u + a * kS), xv, acc[r][a]);
    }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    if constexpr (kA == 1) d[r] = acc[r][0];
    if constexpr (kA == 2) d[r] = vadd(acc[r][0], acc[r][1]);
    if constexpr (kA == 4) d[r] = vadd(vadd(acc[r][0], acc[r][1]), vadd(acc[r][2], acc[r][3]));
  }
}

MOE_QI uint16_t load_u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// The row loop over blocks for R rows at once: block(b, codes, s, z) fills row r's codes source,
// scale and zero of block b; out[r] = row r dotted with x (xs: x's group sums).
template <int G, int R, class Codes, class Block>
MOE_QI void rows_dot(Block block, int64_t nb, const float* x, const float* xs, float* out) {
  V tot0[R], tot1[R];
  float corr0[R], corr1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    tot0[r] = tot1[r] = vzero();
    corr0[r] = corr1[r] = 0.0f;
  }
  const auto step = [&](int64_t b, V * tot, float* corr) __attribute__((always_inline)) {
    Codes codes[R];
    float s[R], z[R];
    V d[R];
    block(b, codes, s, z);
    block_dots<G, R>(codes, x + b * G, d);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      tot[r] = vfma(vset1(s[r]), d[r], tot[r]);
      corr[r] = sfma(s[r] * z[r], xs[b], corr[r]);
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

// Decode: R packed rows (row r at row0 + r * stride; nb blocks of format Q, group G) dotted with
// x into out[0 .. R).
template <QuantType Q, int G, int R>
void dot_packed(const uint8_t* row0, size_t stride, int64_t nb, const float* x, const float* xs, float* out) {
  constexpr int64_t kBytes = static_cast<int64_t>(quant_block_bytes(QuantFormat{Q, G}));
  const auto block = [&](int64_t b, PackedCodes<Q, G> * codes, float* s, float* z) __attribute__((always_inline)) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = row0 + r * stride + b * kBytes;
      codes[r] = PackedCodes<Q, G>{blk + 4};
      s[r] = h2f(load_u16(blk));
      z[r] = h2f(load_u16(blk + 2));
    }
  };
  rows_dot<G, R, PackedCodes<Q, G>>(block, nb, x, xs, out);
}

// Prefill: a row unpacked by unpack_row dotted with x: the same operations as dot_packed.
template <int G>
float dot_unpacked(const float* codes, const float* scale, const float* zero, int64_t nb, const float* x,
                   const float* xs) {
  const auto block = [&](int64_t b, FloatCodes * c, float* s, float* z) __attribute__((always_inline)) {
    c[0] = FloatCodes{codes + b * G};
    s[0] = scale[b];
    z[0] = zero[b];
  };
  float out;
  rows_dot<G, 1, FloatCodes>(block, nb, x, xs, &out);
  return out;
}

// codes (nb * G floats), scale and zero (nb floats each) of one packed row.
template <QuantType Q, int G>
void unpack_row(const uint8_t* row, int64_t nb, float* codes, float* scale, float* zero) {
  constexpr int64_t kBytes = static_cast<int64_t>(quant_block_bytes(QuantFormat{Q, G}));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * kBytes;
    scale[b] = h2f(load_u16(blk));
    zero[b] = h2f(load_u16(blk + 2));
    for (int v = 0; v < G / kW; ++v) vstore(codes + b * G + v * kW, unpack<Q, G>(blk + 4, v));
  }
}

template <QuantType Q, int G>
void dot_packed1(const uint8_t* row0, size_t stride, int64_t nb, const float* x, const float* xs, float* out) {
  dot_packed<Q, G, 1>(row0, stride, nb, x, xs, out);
}
template <QuantType Q, int G>
void dot_packed_n(const uint8_t* row0, size_t stride, int64_t nb, const float* x, const float* xs, float* out) {
  dot_packed<Q, G, kRows>(row0, stride, nb, x, xs, out);
}

// This ISA's kernels, indexed [QuantType][log2(G / 16)].
#define MOE_QDOT_GROUPS(fn, Q) \
  { &fn<Q, 16>, &fn<Q, 32>, &fn<Q, 64>, &fn<Q, 128>, &fn<Q, 256> }
#define MOE_QDOT_TYPES(fn)                                                                                         \
  {                                                                                                                \
    MOE_QDOT_GROUPS(fn, QuantType::kQ8), MOE_QDOT_GROUPS(fn, QuantType::kQ4), MOE_QDOT_GROUPS(fn, QuantType::kQ3), \
        MOE_QDOT_GROUPS(fn, QuantType::kQ2)                                                                        \
  }
inline constexpr QKernels kQKernels = {
    kRows,
    MOE_QDOT_TYPES(dot_packed1),
    MOE_QDOT_TYPES(dot_packed_n),
    MOE_QDOT_TYPES(unpack_row),
    {&dot_unpacked<16>, &dot_unpacked<32>, &dot_unpacked<64>, &dot_unpacked<128>, &dot_unpacked<256>},
};
#undef MOE_QDOT_TYPES
#undef MOE_QDOT_GROUPS
#undef MOE_QI
