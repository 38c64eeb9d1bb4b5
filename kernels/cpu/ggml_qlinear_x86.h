// Private to ggml_qlinear.cpp: the integer x86 kernels of ggml_qlinear (ggml_qlinear_x86.cpp,
// bodies in ggml_qlinear_x86.inc). Built with GCC on x86-64 only (MOE_GGML_X86 there); elsewhere
// ggml_qlinear_x86_kernels returns null and ggml_qlinear takes its f32 path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant/quant_format.h"

namespace moe::cpu::ggml_x86 {

// Token rows of x quantized per 32 (Q8_0-style), each row padded with zeros to kp = K rounded up
// to 256: qs[t * kp + 256 g + 32 i + 4 B + j] = the int8 code (|q| <= 127) of element
// 256 g + 32 B + 4 i + j (within each group of 256, the 8 blocks of 32 transposed by 4-byte
// pieces, as the kernels transpose the weight codes), d[t * kp / 32 + b] the f32 scale of block b,
// s16[t * kp / 16 + j] the sum of the 16 codes of sub-block j (int16: |sum| <= 2032).
struct XView {
  const int8_t* qs;
  const float* d;
  const int16_t* s16;
  int64_t kp;
};

// The dot products of r weight rows (K weights each, as stored, `stride` bytes apart) with nt
// token rows t0 .. t0 + nt - 1 of x: out[i * nt + t] for row i, token t0 + t. The float operations
// of each output are the same whatever r and nt.
using TileFn = void (*)(const uint8_t* row, size_t stride, int64_t K, const XView& x, int64_t t0, float* out);
inline constexpr int kTileTokens = 8, kTileRows = 2;
// Fills x's XView (buffers of the sizes above, zeroed by the caller) from the T x K floats x.
using QuantizeFn = void (*)(const float* x, int64_t T, int64_t K, const XView& out);
struct TileKernels {
  TileFn fn[kTileRows][kTileTokens];  // fn[r - 1][nt - 1]
  QuantizeFn quantize;
  int batch_rows;  // rows per call (fn[batch_rows - 1]) for T >= kBatchTokens; 1 below
};
inline constexpr int kBatchTokens = 4;

// The kernels for `type`, VNNI (AVX-512 VL + VNNI, _mm256_dpbusd_epi32) or AVX2 ones; null
// where `type` has no integer kernel.
const TileKernels* ggml_qlinear_x86_kernels(QuantType type, bool vnni);

}  // namespace moe::cpu::ggml_x86
