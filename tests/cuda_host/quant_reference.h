// Plain (C++17) access to the CPU quantizer for the host-side CUDA layout tests, whose .cu files
// compile as C++17 and so cannot include kernels/quant/quantize.h.
#pragma once

#include <cstdint>
#include <vector>

namespace moe::test {

// w (N, K) quantized with RTN into the stored layout; bits 8/4/3/2, group 16..256.
std::vector<uint8_t> quantize_stored(const std::vector<float>& w, int64_t N, int64_t K, int bits, int group);
// The stored layout dequantized as the CPU backend does: (code - zero) * scale.
std::vector<float> dequantize_stored(const std::vector<uint8_t>& q, int64_t N, int64_t K, int bits, int group);
// IEEE half / bfloat16 encodings (round to nearest even) and their values.
uint16_t to_f16(float f);
uint16_t to_bf16(float f);
float from_f16(uint16_t h);
float from_bf16(uint16_t h);

}  // namespace moe::test
