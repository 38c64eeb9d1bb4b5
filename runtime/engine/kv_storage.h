// The keys and values of every attention layer this stage runs, in backend memory, f32, in
// blocks: per layer k and v of (num_blocks, n_kv_heads / tp, block_size, head_dim). Which
// sequence owns which block is the owner's business: a KvCache (one sequence, one block of its
// whole capacity) or a KvPool (many sequences, blocks handed out as they grow).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/model/config.h"

namespace moe {

class KvStorage {
 public:
  // `max_seq_len`: the most positions one sequence may hold (0: all of them, num_blocks x block_size);
  // device kernels size their launches by it.
  KvStorage(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t num_blocks,
            int64_t block_size, int64_t max_seq_len = 0);

  // Bytes of one block over all of the layout's layers (k and v).
  static uint64_t block_bytes(const ModelConfig& config, const ParallelLayout& layout, int64_t block_size);

  Tensor& k(int64_t local_layer) { return k_[static_cast<size_t>(local_layer)]; }
  Tensor& v(int64_t local_layer) { return v_[static_cast<size_t>(local_layer)]; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t max_seq_len() const { return max_seq_len_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::vector<Tensor> k_, v_;
  int64_t num_blocks_ = 0;
  int64_t block_size_ = 0;
  int64_t max_seq_len_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace moe
