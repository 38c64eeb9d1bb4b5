// The CPU scalar reference for ggml's block formats (kernels/quant/ggml_quants.h) behind a C++17
// interface, for the host tests compiled by nvcc (which cannot include the C++20 headers).
#pragma once

#include <cstdint>

namespace moe::test {

// ggml_dequantize_row for the ggml type at `index` in QuantType's ggml order (0 = Q4_0, 1 = Q4_1,
// 2 = Q5_0, 3 = Q5_1, 4 = Q8_0, 5 = Q2_K, 6 = Q3_K, 7 = Q4_K, 8 = Q5_K, 9 = Q6_K, 10 = IQ4_XS):
// the order of kernels/cuda/gemv_ggml.cuh's GgmlType.
void ggml_reference_row(int index, const uint8_t* src, int64_t n, float* dst);

}  // namespace moe::test
