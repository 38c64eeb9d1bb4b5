// Prefill attention: causal (and sliding-window) attention of one sequence's chunk of query rows
// over its paged cache, tiled: each block takes 16 query rows of one head, walks the visible keys 32 at a time
// through shared memory (keys padded against bank conflicts) and keeps an online softmax per row
// in f32, so scores are never written out. GQA: head h reads KV head h / group.
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_shape.cuh"

namespace moe::cuda {

// q, out (T, n_heads * head_dim) f32: the sequence's rows, at positions seq.pos0 ..; any T >= 1;
// head_dim <= kAttentionMaxHeadDim.
void attention_prefill(const float* q, const float* k_cache, const float* v_cache, const AttentionShape& a,
                       const PrefillSeq& seq, float* out, cudaStream_t stream);

}  // namespace moe::cuda
