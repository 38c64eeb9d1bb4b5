// The device layout of quantized weights, and the kernel that produces it from the stored layout
// (kernels/quant/quant_format.h). Each row keeps its size (quant_row_bytes) and its place, so
// row views (Tensor::row, slice_rows: fused experts, split gate/up) stay valid; inside a row of
// nb = K / G blocks the pieces are regrouped so that codes are contiguous and wide loads work:
//
//   q8, q4, q2:  [codes of block 0 .. nb-1: nb * G*bits/8 bytes][nb x (fp16 scale, fp16 zero)]
//   q3:          [low two bits, q2 layout, blocks 0 .. nb-1: nb * G/4 bytes]
//                [bit 2 of every code: K/8 bytes, bit j%8 of byte j/8 = bit 2 of row code j]
//                [nb x (fp16 scale, fp16 zero)]
//
// The code order inside a block is the stored one (q4: byte i = code i | code i + G/2 << 4;
// q2: byte i = codes i, i + G/4, i + G/2, i + 3G/4 in bits 0-1, 2-3, 4-5, 6-7). The q3 high-bit
// plane is the stored per-block high bytes concatenated, which is exactly the row-wide bitmap.
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/operand.cuh"

namespace moe::cuda {

// dst (rows x qrow_bytes) = src (stored layout) regrouped; src and dst in device memory, distinct.
void repack_quantized(const void* src, void* dst, int64_t rows, int64_t K, QFormat q, int group, cudaStream_t stream);

}  // namespace moe::cuda
