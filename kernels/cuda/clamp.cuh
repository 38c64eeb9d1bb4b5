// x = min(max(x, lo), hi) in place (clip_qkv). Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

void clamp(float* x, int64_t n, float lo, float hi, cudaStream_t stream);

}  // namespace moe::cuda
