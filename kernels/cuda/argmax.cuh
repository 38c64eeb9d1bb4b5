// Greedy sampling on the device: the index of the largest logit (ties to the lower index, as the
// host sampler picks), so that a greedy decode step copies 4 bytes back instead of the whole
// vocabulary. Not reachable through the Backend interface yet (the engine copies logits and
// samples on the host); exposed for callers and benchmarks that own the step.
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

// out[0] = argmax over logits[0 .. n); one block.
void argmax(const float* logits, int64_t n, int32_t* out, cudaStream_t stream);

}  // namespace moe::cuda
