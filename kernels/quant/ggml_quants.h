// ggml's block formats as GGUF files hold them (ggml-common.h; ../shared/REFERENCE.md "GGUF"):
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (blocks of 32) and Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (super-
// blocks of 256). Here: the scalar dequantization every kernel is checked against, bit-exact with
// ggml's dequantize_row_* and gguf-py's gguf.quants.dequantize (the oracle of the tests).
#pragma once

#include <cstdint>

#include "kernels/quant/quant_format.h"

namespace moe {

// dst[0, n) = the n weights held by n / ggml_block(t).elems consecutive blocks at `src`.
// Precondition: is_ggml(t) and n a multiple of the block length (callers validate).
void ggml_dequantize_row(QuantType t, const uint8_t* src, int64_t n, float* dst);

}  // namespace moe
