// Plain descriptions of what the CUDA kernels read, shared by every op's launcher. Host-only,
// C++17 (the CUDA sources compile as C++17, so kernels/common/dtype.h and
// kernels/quant/quant_format.h, which need C++20, are not included here; the CUDA backend maps
// its Tensor onto these).
#pragma once

#include <cstdint>

namespace moe::cuda {

// Element type of an unquantized weight (activations are always f32).
enum class Elem : uint8_t { kF32, kF16, kBF16 };

// Quantized weight formats: kernels/quant/quant_format.h's QuantType with kNone added.
enum class QFormat : uint8_t { kNone, kQ8, kQ4, kQ3, kQ2 };

constexpr int qformat_bits(QFormat q) {
  switch (q) {
    case QFormat::kQ8: return 8;
    case QFormat::kQ4: return 4;
    case QFormat::kQ3: return 3;
    case QFormat::kQ2: return 2;
    case QFormat::kNone: break;
  }
  return 0;
}

// Bytes of one row of K quantized weights: (K / group) blocks of 4 + group * bits / 8 bytes.
// The same size in the stored layout and in the device layout (see quant_repack.cuh).
constexpr int64_t qrow_bytes(QFormat q, int group, int64_t K) {
  return (K / group) * (4 + static_cast<int64_t>(group) * qformat_bits(q) / 8);
}

// A weight matrix (N, K), row-major, in device memory. Quantized rows are in the device layout
// (quant_repack.cuh); `elem` is meaningless for them.
struct WeightOperand {
  const void* data = nullptr;
  Elem elem = Elem::kF32;
  QFormat q = QFormat::kNone;
  int group = 0;  // quantization group size (16, 32, 64, 128, 256)
  int64_t n = 0;  // rows (outputs)
  int64_t k = 0;  // columns (inputs)
  int64_t row_bytes() const { return q == QFormat::kNone ? k * (elem == Elem::kF32 ? 4 : 2) : qrow_bytes(q, group, k); }
};

// An optional bias (N), f32/f16/bf16; data == nullptr for none.
struct BiasOperand {
  const void* data = nullptr;
  Elem elem = Elem::kF32;
};

}  // namespace moe::cuda
