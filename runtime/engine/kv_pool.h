// The KV cache of many sequences at once: a KvStorage of fixed-size blocks (paged, as vLLM's
// PagedAttention) handed to sequences as they grow and taken back when they end. A sequence's
// block table lists its blocks in position order; memory is committed once, at the byte budget
// (--kv-mem), and a sequence only holds the blocks its positions fill (plus at most one partly
// filled block), so short and long sequences share the pool without per-sequence reservations.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/engine/kv_storage.h"

namespace moe {

class KvPool {
 public:
  // `num_blocks` blocks of `block_size` positions; no sequence may hold more than `max_seq_len`
  // positions (the context length). Throws moe::Error for non-positive sizes.
  KvPool(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t num_blocks,
         int64_t block_size, int64_t max_seq_len);

  // How many blocks of `block_size` positions fit in `bytes` (0 when not one does).
  static int64_t blocks_in(uint64_t bytes, const ModelConfig& config, const ParallelLayout& layout, int64_t block_size);

  KvStorage& storage() { return storage_; }
  int64_t block_size() const { return storage_.block_size(); }
  int64_t max_seq_len() const { return max_seq_len_; }
  int64_t num_blocks() const { return storage_.num_blocks(); }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return num_blocks() - free_blocks(); }
  uint64_t bytes() const { return storage_.bytes(); }
  // Blocks needed to hold `positions` positions.
  int64_t blocks_for(int64_t positions) const { return (positions + block_size() - 1) / block_size(); }

  // Grows `table` until it holds `positions` positions. Returns false, changing nothing, when the
  // pool has too few free blocks. Throws moe::Error past max_seq_len.
  bool reserve(std::vector<int32_t>& table, int64_t positions);
  // Returns every block of `table` to the pool and clears it.
  void release(std::vector<int32_t>& table);

 private:
  KvStorage storage_;
  int64_t max_seq_len_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is handed out first
};

}  // namespace moe
