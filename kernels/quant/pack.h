// Bit packing of the codes of one block (layouts in quant_format.h). Private to kernels/quant.
#pragma once

#include <cstdint>

#include "kernels/quant/quant_format.h"

namespace moe {

// Packs codes[0, g) (each < 2^bits) into the g * bits / 8 code bytes of one block at dst.
// Precondition: g % 8 == 0.
void pack_codes(const uint8_t* codes, QuantFormat f, uint8_t* dst);

// Code j of the packed codes at src (0 <= j < g).
uint32_t unpack_code(const uint8_t* src, QuantType t, int g, int j);

// out[j] = (code j - z) * s for j in [0, g): plain loops the compiler vectorises.
void dequantize_block_codes(const uint8_t* src, QuantType t, int g, float s, float z, float* out);

}  // namespace moe
