// Row gather and scaled scatter-add, for expert dispatch:
//   gather:      out[i, :] = x[rows[i], :]
//   scatter_add: acc[rows[i], :] += scale[i] * x[i, :]   (rows distinct within one call)
// rows and scale may live in mapped pinned host memory (the host decides the dispatch).
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

void gather_rows(const float* x, const int32_t* rows, int64_t n, int64_t width, float* out, cudaStream_t stream);
void scatter_add_rows(const float* x, const int32_t* rows, const float* scale, int64_t n, int64_t width, float* acc,
                      cudaStream_t stream);

}  // namespace moe::cuda
