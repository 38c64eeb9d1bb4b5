// Decode attention (a few query rows against a long cache), split over the sequence
// (flash-decoding): each block takes one KV head, the query heads that share it (GQA: the keys
// and values are read once for the whole group) and one slice of the visible keys; its four
// warps walk the slice with an online softmax in f32; a second kernel merges the slices. The
// number of slices is fixed by the cache capacity (not the current length), so the launch
// shape of a decode step does not change from step to step (CUDA graphs).
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_shape.cuh"

namespace moe::cuda {

constexpr int kDecodeAttentionMaxTokens = 4;

// Slices for this shape on a device with `sms` multiprocessors (depends on capacity, not pos0).
int attention_decode_splits(const AttentionShape& a, int sms);
// Scratch floats for `splits` slices.
int64_t attention_decode_scratch_floats(const AttentionShape& a, int splits);

// out (T, n_heads * head_dim) f32; T <= kDecodeAttentionMaxTokens; head_dim <= kAttentionMaxHeadDim.
void attention_decode(const float* q, const float* k_cache, const float* v_cache, const AttentionShape& a, int splits,
                      float* scratch, float* out, cudaStream_t stream);

}  // namespace moe::cuda
