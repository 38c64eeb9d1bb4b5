// Decode attention (query rows of several sequences, each against its own long paged cache),
// split over the sequence (flash-decoding): each block takes one query row, one KV head, the
// query heads that share it (GQA: the keys and values are read once for the whole group) and one
// slice of the row's visible keys; its four warps walk the slice with an online softmax in f32; a
// second kernel merges the slices. The number of slices is fixed by the longest sequence the
// cache allows (not the current lengths), so the launch shape of a decode step does not change
// from step to step (CUDA graphs).
// Host-only header.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_shape.cuh"

namespace moe::cuda {

// Sequences with at most this many query rows in a step go to the decode kernel; longer
// prefill chunks to attention_prefill.
constexpr int kDecodeAttentionMaxTokens = 4;

// Slices for this shape on a device with `sms` multiprocessors (depends on max_seq_len, not on
// the positions).
int attention_decode_splits(const AttentionShape& a, int sms);
// Scratch floats for `splits` slices.
int64_t attention_decode_scratch_floats(const AttentionShape& a, int splits);

// Rows r.rows[0 .. a.T) of out (., n_heads * head_dim) f32; head_dim <= kAttentionMaxHeadDim.
void attention_decode(const float* q, const float* k_cache, const float* v_cache, const AttentionShape& a,
                      const DecodeRows& r, int splits, float* scratch, float* out, cudaStream_t stream);

}  // namespace moe::cuda
