// Projections over ggml's block formats as GGUF files hold them (kernels/quant/ggml_quants.h).
#pragma once

#include <cstdint>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"

namespace moe::cpu {

// y[t, n] = sum_k x[t, k] * deq(w)[n, k] + (bias.data ? bias[n] : 0), the contract of qlinear
// (kernels/cpu/qlinear.h) for a weight of ggml type `type` (is_ggml): N rows of K / block
// blocks as stored. Multithreaded over n; the result for a token row does not depend on T or on
// the thread count.
void ggml_qlinear(const float* x, int64_t T, int64_t K, const uint8_t* w, QuantType type, int64_t N, WeightRef bias,
                  float* y);

// Whether ggml_qlinear takes its integer path for `type` now: x rounded to int8 per block of 32
// (Q8_0-style), exact integer dot products with every weight block (every ggml type: Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS; AVX2 and AVX-512 ISAs, VNNI where the
// CPU has it; GCC x86-64 builds). Each weight row is unpacked once per call and dotted with up to
// 8 token rows per pass. Otherwise (the portable ISA, the f32 path forced (qlinear_isa.h), or
// builds without the kernels, e.g. clang) every weight row is dequantized with
// ggml_dequantize_row and multiplied in f32.
bool ggml_qlinear_int_path(QuantType type);

}  // namespace moe::cpu
