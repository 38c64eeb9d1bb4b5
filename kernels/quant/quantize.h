// Quantizers: f32 weights -> blocks of kernels/quant/quant_format.h, and back.
#pragma once

#include <cstdint>

#include "kernels/quant/quant_format.h"

namespace moe {

enum class Quantizer : uint8_t {
  kRtn,  // round to nearest: scale = (max - min) / (2^bits - 1), zero = -min / scale
  kHqq,  // error-minimising: start from RTN, then refit zero (and optionally scale) by the
         // half-quadratic solver of HQQ (Badri & Shaji 2023) for a robust lp (p < 1) error
};

struct QuantizeOptions {
  Quantizer quantizer = Quantizer::kHqq;
  int hqq_iterations = 20;   // HQQ solver steps per group
  float hqq_lp_norm = 0.7f;  // p of the robust error
  float hqq_beta = 10.0f;    // initial penalty, grows by hqq_kappa per step
  float hqq_kappa = 1.01f;
};

// Quantizes row-major weights w (N, K) into N * quant_row_bytes(f, K) bytes at out.
// Preconditions: K % f.group_size == 0; all w finite; f one of our types (not is_ggml). Multithreaded over rows
// (OpenMP). Deterministic: the same input gives the same bytes whatever the thread count.
void quantize_rows(const float* w, int64_t N, int64_t K, QuantFormat f, const QuantizeOptions& opt, uint8_t* out);

// out (N, K) = dequantized weights, of our formats or ggml's (ggml_dequantize_row). Multithreaded
// over rows.
void dequantize_rows(const uint8_t* q, int64_t N, int64_t K, QuantFormat f, float* out);

// Reads code j (0 <= j < group_size) of one block; for tests and reference paths.
uint32_t quant_code(const uint8_t* block, QuantFormat f, int32_t j);

}  // namespace moe
