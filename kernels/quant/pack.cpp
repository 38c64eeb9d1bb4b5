// Bit packing of block codes; the layouts are those of quant_format.h.
#include "kernels/quant/pack.h"

#include <cassert>

namespace moe {

namespace {

// The 2-bit layout shared by q2 and the low bits of q3: byte i holds codes i, i + g/4, i + g/2
// and i + 3g/4 at bits 0, 2, 4, 6.
void pack_2bit(const uint8_t* codes, int g, uint8_t* dst) {
  const int q = g / 4;
  for (int i = 0; i < q; ++i) {
    dst[i] = static_cast<uint8_t>((codes[i] & 3u) | (codes[i + q] & 3u) << 2 | (codes[i + 2 * q] & 3u) << 4 |
                                  (codes[i + 3 * q] & 3u) << 6);
  }
}

void dequant_2bit(const uint8_t* src, int g, float s, float z, float* out) {
  const int q = g / 4;
  for (int i = 0; i < q; ++i) {
    const unsigned b = src[i];
    out[i] = (static_cast<float>(b & 3u) - z) * s;
    out[i + q] = (static_cast<float>((b >> 2) & 3u) - z) * s;
    out[i + 2 * q] = (static_cast<float>((b >> 4) & 3u) - z) * s;
    out[i + 3 * q] = (static_cast<float>(b >> 6) - z) * s;
  }
}

}  // namespace

void pack_codes(const uint8_t* codes, QuantFormat f, uint8_t* dst) {
  const int g = f.group_size;
  assert(g % 8 == 0);
  switch (f.type) {
    case QuantType::kQ8:
      for (int j = 0; j < g; ++j) dst[j] = codes[j];
      return;
    case QuantType::kQ4: {
      const int h = g / 2;
      for (int i = 0; i < h; ++i) dst[i] = static_cast<uint8_t>((codes[i] & 15u) | (codes[i + h] & 15u) << 4);
      return;
    }
    case QuantType::kQ2: pack_2bit(codes, g, dst); return;
    case QuantType::kQ3: {
      pack_2bit(codes, g, dst);
      uint8_t* high = dst + g / 4;
      for (int i = 0; i < g / 8; ++i) {
        unsigned byte = 0;
        for (int b = 0; b < 8; ++b) byte |= ((codes[8 * i + b] >> 2) & 1u) << b;
        high[i] = static_cast<uint8_t>(byte);
      }
      return;
    }
    MOE_GGML_QUANT_CASES:
      assert(false && "pack_codes: ggml types are not written by our quantizers");
      return;
  }
}

uint32_t unpack_code(const uint8_t* src, QuantType t, int g, int j) {
  switch (t) {
    case QuantType::kQ8: return src[j];
    case QuantType::kQ4: return j < g / 2 ? src[j] & 15u : static_cast<uint32_t>(src[j - g / 2] >> 4);
    case QuantType::kQ2: {
      const int q = g / 4;
      return (src[j % q] >> (2 * (j / q))) & 3u;
    }
    case QuantType::kQ3: {
      const uint32_t low = unpack_code(src, QuantType::kQ2, g, j);
      const uint32_t high = (src[g / 4 + j / 8] >> (j % 8)) & 1u;
      return low | high << 2;
    }
    MOE_GGML_QUANT_CASES:
      break;  // not affine codes (ggml_quants.h)
  }
  return 0;
}

void dequantize_block_codes(const uint8_t* src, QuantType t, int g, float s, float z, float* out) {
  switch (t) {
    case QuantType::kQ8:
      for (int j = 0; j < g; ++j) out[j] = (static_cast<float>(src[j]) - z) * s;
      return;
    case QuantType::kQ4: {
      const int h = g / 2;
      for (int i = 0; i < h; ++i) {
        out[i] = (static_cast<float>(src[i] & 15u) - z) * s;
        out[i + h] = (static_cast<float>(src[i] >> 4) - z) * s;
      }
      return;
    }
    case QuantType::kQ2: dequant_2bit(src, g, s, z, out); return;
    case QuantType::kQ3: {
      // Code j = k * g/4 + i: low bits at bits 2k of byte i, high bit j % 8 of byte j / 8.
      const uint8_t* high = src + g / 4;
      const int q = g / 4;
      for (int k = 0; k < 4; ++k) {
        for (int i = 0; i < q; ++i) {
          const int j = k * q + i;
          const unsigned code = ((src[i] >> (2 * k)) & 3u) | ((high[j >> 3] >> (j & 7)) & 1u) << 2;
          out[j] = (static_cast<float>(code) - z) * s;
        }
      }
      return;
    }
    MOE_GGML_QUANT_CASES:
      assert(false && "dequantize_block_codes: a ggml type (use ggml_dequantize_row)");
      return;
  }
}

}  // namespace moe
