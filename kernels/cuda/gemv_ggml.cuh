// Products with weights in ggml's block formats (GGUF files), kept in their stored layout: each
// row of K weights is K / block blocks exactly as the file holds them (no repack; ggml-common.h,
// kernels/quant/ggml_quants.h). Host-only header, C++17: GgmlType mirrors the kGgml* values of
// kernels/quant/quant_format.h's QuantType (the backend maps one onto the other).
//
// Design: a warp per weight row, four rows per 128-thread block. A row is cut into units of 32
// weights (a Q4_0 .. Q8_0 block, or one of the eight 32-weight sub-blocks of a K-quant or IQ4_XS
// super-block); lane l takes units l, l + 32, ... so a warp reads consecutive bytes of the row.
// Each unit is dequantized exactly as ggml does (ggml_dequant.cuh) and dotted with x in f32; lanes
// are reduced with shuffles. No x quantization (ggml's mmvq quantizes x to q8_1; we do not).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/operand.cuh"

namespace moe::cuda {

enum class GgmlType : uint8_t { kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kIQ4_XS };

// Weights and bytes of one block (ggml-common.h).
constexpr int ggml_block_elems(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0: return 32;
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kIQ4_XS: return 256;
  }
  return 0;
}
constexpr int ggml_block_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_0: return 18;
    case GgmlType::kQ4_1: return 20;
    case GgmlType::kQ5_0: return 22;
    case GgmlType::kQ5_1: return 24;
    case GgmlType::kQ8_0: return 34;
    case GgmlType::kQ2_K: return 84;
    case GgmlType::kQ3_K: return 110;
    case GgmlType::kQ4_K: return 144;
    case GgmlType::kQ5_K: return 176;
    case GgmlType::kQ6_K: return 210;
    case GgmlType::kIQ4_XS: return 136;
  }
  return 0;
}

// A ggml-typed weight (N, K) in device memory, rows of K / ggml_block_elems(type) stored blocks.
struct GgmlWeight {
  const void* data = nullptr;
  GgmlType type = GgmlType::kQ8_0;
  int64_t n = 0;  // rows (outputs)
  int64_t k = 0;  // columns (inputs), a multiple of the block length
  int64_t row_bytes() const { return k / ggml_block_elems(type) * ggml_block_bytes(type); }
};

constexpr int kGgmlGemvMaxTokens = 4;

// y (T, N) = x (T, K) w^T (+ bias), x and y f32 in device memory; any T >= 1. T <= 4 is one
// launch that reads the weight once; larger T runs that kernel over groups of 4 token rows (the
// weight is read ceil(T / 4) times: correct, not a prefill GEMM; see docs/cuda-backend.md).
void ggml_linear(const float* x, int T, const GgmlWeight& w, const BiasOperand& bias, float* y, cudaStream_t stream);

// h (T, I) = silu(x gate^T) * (x up^T); gate and up (I, H) of the same ggml type; any T >= 1 (as
// ggml_linear, in groups of 4 token rows).
void ggml_swiglu(const float* x, int T, const GgmlWeight& gate, const GgmlWeight& up, float* h, cudaStream_t stream);

// out (T, K) = rows ids (T) of a ggml-typed table (N, K), dequantized as ggml does; ids in device
// (or mapped pinned) memory, already range-checked by the caller.
void ggml_embedding(const int32_t* ids, int T, const GgmlWeight& table, float* out, cudaStream_t stream);

}  // namespace moe::cuda
