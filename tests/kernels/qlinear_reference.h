// Shared by the quantized-kernel tests: blocks written straight from the layout of
// quant_format.h (random codes, scales and zeros, independent of the quantizers), the scalar
// float64 reference that decodes them bit by bit, and the tolerances (see test_qlinear.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/cpu/qlinear_isa.h"
#include "kernels/quant/quant_format.h"

namespace moe::qref {

using cpu::QIsa;

using cpu::QIsa;

inline const char* type_name(QuantType t) {
  switch (t) {
    case QuantType::kQ8: return "q8";
    case QuantType::kQ4: return "q4";
    case QuantType::kQ3: return "q3";
    case QuantType::kQ2:
      return "q2";
    MOE_GGML_QUANT_CASES:
      break;
  }
  return "?";
}
inline std::string format_name(QuantFormat f) {
  return type_name(f.type) + std::string("g") + std::to_string(f.group_size);
}

// The SIMD paths available here, best first; the kernels' ISA is restored on destruction.
struct IsaList {
  std::vector<QIsa> isas;
  IsaList() {
    for (const QIsa i : {QIsa::kAvx512, QIsa::kAvx2, QIsa::kPortable})
      if (static_cast<int>(i) <= static_cast<int>(cpu::qisa_best())) isas.push_back(i);
  }
  ~IsaList() { cpu::qisa_set(cpu::qisa_best()); }
};

// ---- Writing blocks (the encoder side of quant_format.h) ------------------------------------------

inline void put_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

// Packs codes[0 .. g) (each < 2^bits) into the code bytes of one block.
inline void pack_codes(const std::vector<uint32_t>& codes, QuantFormat f, uint8_t* out) {
  const int g = f.group_size;
  std::memset(out, 0, static_cast<size_t>(g * quant_bits(f.type) / 8));
  for (int j = 0; j < g; ++j) {
    const uint32_t c = codes[static_cast<size_t>(j)];
    switch (f.type) {
      case QuantType::kQ8: out[j] = static_cast<uint8_t>(c); break;
      case QuantType::kQ4: out[j % (g / 2)] |= static_cast<uint8_t>(c << (4 * (j / (g / 2)))); break;
      case QuantType::kQ3: out[g / 4 + j / 8] |= static_cast<uint8_t>(((c >> 2) & 1u) << (j % 8)); [[fallthrough]];
      case QuantType::kQ2:
        out[j % (g / 4)] |= static_cast<uint8_t>((c & 3u) << (2 * (j / (g / 4))));
        break;
      MOE_GGML_QUANT_CASES:
        break;
    }
  }
}

// N rows of K random weights in format f: codes uniform over the full range, scales positive
// f16 of magnitudes 2^-12 .. 2^0, zeros real numbers inside the code range (rounded to f16).
inline std::vector<uint8_t> random_weights(std::mt19937& rng, QuantFormat f, int64_t N, int64_t K) {
  const uint32_t max_code = (1u << quant_bits(f.type)) - 1;
  std::uniform_int_distribution<uint32_t> code(0, max_code);
  std::uniform_real_distribution<float> log_scale(-12.0f, 0.0f);
  std::uniform_real_distribution<float> zero(0.0f, static_cast<float>(max_code));
  const size_t bb = quant_block_bytes(f);
  std::vector<uint8_t> w(static_cast<size_t>(N) * quant_row_bytes(f, K));
  std::vector<uint32_t> codes(static_cast<size_t>(f.group_size));
  for (size_t b = 0; b < w.size() / bb; ++b) {
    uint8_t* blk = w.data() + b * bb;
    put_u16(blk, f32_to_f16(std::exp2(log_scale(rng))));
    put_u16(blk + 2, f32_to_f16(zero(rng)));
    for (uint32_t& c : codes) c = code(rng);
    pack_codes(codes, f, blk + 4);
  }
  return w;
}

// ---- Reference (the decoder side, scalar, float64) ------------------------------------------------

// Code j of one block, read bit by bit from the layout description.
inline uint32_t ref_code(const uint8_t* codes, QuantFormat f, int j) {
  const int g = f.group_size;
  switch (f.type) {
    case QuantType::kQ8: return codes[j];
    case QuantType::kQ4: return (codes[j % (g / 2)] >> (4 * (j / (g / 2)))) & 15u;
    case QuantType::kQ2: return (codes[j % (g / 4)] >> (2 * (j / (g / 4)))) & 3u;
    case QuantType::kQ3: {
      const uint32_t lo = (codes[j % (g / 4)] >> (2 * (j / (g / 4)))) & 3u;
      const uint32_t hi = (codes[g / 4 + j / 8] >> (j % 8)) & 1u;
      return lo | hi << 2;
    }
    MOE_GGML_QUANT_CASES:
      break;
  }
  return 0;
}

// Row n of w dequantized in double.
inline std::vector<double> ref_row(const uint8_t* w, QuantFormat f, int64_t K, int64_t n) {
  std::vector<double> row(static_cast<size_t>(K));
  const uint8_t* r = w + static_cast<size_t>(n) * quant_row_bytes(f, K);
  for (int64_t b = 0; b < K / f.group_size; ++b) {
    const uint8_t* blk = r + static_cast<size_t>(b) * quant_block_bytes(f);
    uint16_t s, z;
    std::memcpy(&s, blk, 2);
    std::memcpy(&z, blk + 2, 2);
    for (int j = 0; j < f.group_size; ++j)
      row[static_cast<size_t>(b * f.group_size + j)] =
          (static_cast<double>(ref_code(blk + 4, f, j)) - f16_to_f32(z)) * static_cast<double>(f16_to_f32(s));
  }
  return row;
}

// want[t, n] = sum_k x[t, k] deq[n, k] (+ bias), mag[t, n] = sum_k |x[t, k] deq[n, k]|.
template <class X>
void ref_qlinear(const X* x, int64_t T, int64_t K, const uint8_t* w, QuantFormat f, int64_t N, WeightRef bias,
                 std::vector<double>& want, std::vector<double>& mag) {
  want.assign(static_cast<size_t>(T * N), 0.0);
  mag.assign(static_cast<size_t>(T * N), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const std::vector<double> row = ref_row(w, f, K, n);
    const double b = bias.data != nullptr ? load_as_f32(bias.data, bias.dtype, n) : 0.0;
    for (int64_t t = 0; t < T; ++t) {
      double s = b, m = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = static_cast<double>(x[t * K + k]) * row[static_cast<size_t>(k)];
        s += p;
        m += std::fabs(p);
      }
      want[static_cast<size_t>(t * N + n)] = s;
      mag[static_cast<size_t>(t * N + n)] = m;
    }
  }
}

// Tolerance. The kernel accumulates in f32 (each product and sum rounds at 2^-24 relative) and
// uses s * (sum c x - z * sum x) per block, whose terms are within a small factor (< ~4 for codes
// spread over their range) of the |x * deq| terms; the accumulated rounding error is then a
// small multiple of 2^-24 * sqrt(terms per lane) * sum_k |x_k deq_k|. 1e-5 * sum|x deq| (~170
// ulp) leaves a wide margin for K up to 4096, yet a single wrong, missing or doubled term (about
// sum|x deq| / K, >= 2.4e-4 of it here) fails; + 1e-6 absolute for rows that sum to ~0.
inline double tolerance(double mag) {
  return 1e-5 * mag + 1e-6;
}

// The integer path's extra error. It quantizes each group of g values of a token row to
// xq = round(x / sx), sx = max|x_group| / 127 (f32, as the kernel computes it), so
// |x_k - sx xq_k| <= sx / 2 and the exact product with int8 x differs from the reference by at most
// err[t, n] = sum_k |deq[n, k]| * sx_g(k) / 2 (times 1 + 1e-5 for the rounding of x / sx itself;
// the f32 rounding of the accumulation stays within tolerance()).
template <class X>
std::vector<double> int_bound(const X* x, int64_t T, int64_t K, const uint8_t* w, QuantFormat f, int64_t N) {
  const int64_t g = f.group_size;
  std::vector<double> half_sx(static_cast<size_t>(T * K));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < K / g; ++b) {
      float amax = 0.0f;
      for (int64_t j = 0; j < g; ++j) amax = std::fmax(amax, std::fabs(static_cast<float>(x[t * K + b * g + j])));
      const double h = 0.5 * static_cast<double>(amax / 127.0f) * (1.0 + 1e-5);
      for (int64_t j = 0; j < g; ++j) half_sx[static_cast<size_t>(t * K + b * g + j)] = h;
    }
  std::vector<double> err(static_cast<size_t>(T * N), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const std::vector<double> row = ref_row(w, f, K, n);
    for (int64_t t = 0; t < T; ++t) {
      double e = 0.0;
      for (int64_t k = 0; k < K; ++k)
        e += std::fabs(row[static_cast<size_t>(k)]) * half_sx[static_cast<size_t>(t * K + k)];
      err[static_cast<size_t>(t * N + n)] = e;
    }
  }
  return err;
}

}  // namespace moe::qref
