// The shape of one attention call over a paged KV cache, shared by the decode and prefill
// kernels. Host-only header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::cuda {

// Caches (num_blocks, n_kv, block_size, head_dim) f32: a sequence's position p is row
// p % block_size of block table[p / block_size] of that sequence (a single contiguous cache is one
// block of `capacity` rows). Query rows attend causally to their own sequence's keys; window > 0:
// each query sees its last `window` keys. Grouped-query: head h reads KV head h / (n_heads / n_kv).
struct AttentionShape {
  int T = 0;  // query rows of this launch
  int n_heads = 0, n_kv = 0, head_dim = 0;
  int block_size = 0;
  int64_t max_seq_len = 0;  // the most positions a sequence may hold: fixes the decode split count
  int64_t window = 0;
  float scale = 1.0f;
};

// Decode rows: query row i of the launch is row rows[i] of q and out, at position positions[i],
// with its sequence's blocks at block_table + tables[i]. Device-readable memory.
struct DecodeRows {
  const int32_t* rows = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* tables = nullptr;
  const int32_t* block_table = nullptr;
};

// One sequence's prefill chunk: T query rows at positions pos0 .. pos0 + T - 1, its blocks at
// `table` (device-readable).
struct PrefillSeq {
  int64_t pos0 = 0;
  const int32_t* table = nullptr;
};

constexpr int kAttentionMaxHeadDim = 256;

// Address of (position j, kv head h) in a paged cache: block table[j / bs], row j % bs.
__host__ __device__ inline int64_t paged_offset(const int32_t* table, int64_t j, int bs, int n_kv, int h, int D) {
  const int64_t block = table[j / bs];
  return ((block * n_kv + h) * bs + j % bs) * D;
}

}  // namespace moe::cuda
