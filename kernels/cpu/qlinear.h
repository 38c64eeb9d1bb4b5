// Projections over quantized weights (kernels/quant/quant_format.h): the matrix-vector product
// of decode and the matrix-matrix product of prefill, plus the fused SwiGLU expert.
#pragma once

#include <cstdint>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"

namespace moe::cpu {

// One quantized weight operand: its bytes, format and layout (kTile16: kernels/cpu/qtile.h).
struct QWeight {
  const uint8_t* data = nullptr;
  QuantFormat format{};
  QuantLayout layout = QuantLayout::kRows;
};

// y[t, n] = sum_k x[t, k] * deq(w)[n, k] + (bias.data ? bias[n] : 0)
//   x: (T, K) f32; w: N rows of quant_row_bytes(f, K) bytes; bias (N) or none; y: (T, N) f32.
// Accumulates in f32. Multithreaded over n; SIMD chosen at run time (AVX-512, AVX2/FMA, scalar).
// The result for a token row does not depend on T or on the thread count. kTile16 weights need
// K % group_size == 0 like any other, and take the integer arithmetic of qtile.h on every ISA.
void qlinear(const float* x, int64_t T, int64_t K, QWeight w, int64_t N, WeightRef bias, float* y);
inline void qlinear(const float* x, int64_t T, int64_t K, const uint8_t* w, QuantFormat f, int64_t N, WeightRef bias,
                    float* y) {
  qlinear(x, T, K, QWeight{w, f, QuantLayout::kRows}, N, bias, y);
}

// One quantized SwiGLU MLP over T token rows: y = down(silu(gate(x)) * up(x)).
//   x (T, H); gate, up: I rows of H weights; down: H rows of I weights (each with its format);
//   scratch: at least 2 * T * I floats; y (T, H).
// Gate and up run in one parallel pass over their rows.
void qswiglu(const float* x, int64_t T, int64_t H, QWeight gate, QWeight up, QWeight down, int64_t I, float* scratch,
             float* y);
inline void qswiglu(const float* x, int64_t T, int64_t H, const uint8_t* gate, QuantFormat gate_f, const uint8_t* up,
                    QuantFormat up_f, const uint8_t* down, QuantFormat down_f, int64_t I, float* scratch, float* y) {
  qswiglu(x, T, H, QWeight{gate, gate_f, QuantLayout::kRows}, QWeight{up, up_f, QuantLayout::kRows},
          QWeight{down, down_f, QuantLayout::kRows}, I, scratch, y);
}

}  // namespace moe::cpu
