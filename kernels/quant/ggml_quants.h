// ggml's block formats as GGUF files hold them (ggml-common.h; ../shared/REFERENCE.md "GGUF"):
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (blocks of 32) and Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (super-
// blocks of 256). Here: the scalar dequantization every kernel is checked against, bit-exact with
// ggml's dequantize_row_* and gguf-py's gguf.quants.dequantize (the oracle of the tests).
//
// Block layouts (little-endian; d, dmin: IEEE f16; byte offsets in brackets):
//   Q4_0   (18 B)  d[0] qs[2..18): w[j] = d*((qs[j]&15)-8), w[j+16] = d*((qs[j]>>4)-8)
//   Q4_1   (20 B)  d[0] m[2] qs[4..20): w[j] = d*(qs[j]&15) + m, w[j+16] = d*(qs[j]>>4) + m
//   Q5_0   (22 B)  d[0] qh[2..6) (u32) qs[6..22): 5th bit of w[j] is bit j of qh; code - 16
//   Q5_1   (24 B)  d[0] m[2] qh[4..8) qs[8..24): as Q5_0 with d*code + m
//   Q8_0   (34 B)  d[0] qs[2..34) int8: w[j] = d*qs[j]
//   Q2_K   (84 B)  scales[0..16) (lo: scale, hi: min, per 16) qs[16..80) d[80] dmin[82]
//   Q3_K  (110 B)  hmask[0..32) qs[32..96) scales[96..108) (16 x 6 bits, minus 32) d[108]
//   Q4_K  (144 B)  d[0] dmin[2] scales[4..16) (8 x 6-bit scale + min, ggml_scale_min_k4) qs[16..144)
//   Q5_K  (176 B)  d[0] dmin[2] scales[4..16) qh[16..48) qs[48..176)
//   Q6_K  (210 B)  ql[0..128) qh[128..192) scales[192..208) int8 d[208]
//   IQ4_XS(136 B)  d[0] scales_h[2] (u16) scales_l[4..8) qs[8..136): kIq4nlValues[code]
#pragma once

#include <cstdint>

#include "kernels/quant/quant_format.h"

namespace moe {

// dst[0, n) = the n weights held by n / ggml_block(t).elems consecutive blocks at `src`.
// Precondition: is_ggml(t) and n a multiple of the block length (callers validate).
void ggml_dequantize_row(QuantType t, const uint8_t* src, int64_t n, float* dst);

// The non-linear code book of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Q4_K / Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed scale bytes
// (ggml's get_scale_min_k4).
inline void ggml_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q3_K: the 16 signed 6-bit scales (-32 .. 31) from the 12 packed scale bytes.
inline void ggml_q3k_scales(const uint8_t* s, int8_t* out) {
  for (int i = 0; i < 16; ++i) {
    const int lo = (i < 8 ? s[i] : s[i - 8] >> 4) & 0xF;
    const int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    out[i] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

}  // namespace moe
