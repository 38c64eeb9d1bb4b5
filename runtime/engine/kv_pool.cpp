#include "runtime/engine/kv_pool.h"

#include "runtime/core/error.h"

namespace moe {

KvPool::KvPool(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t num_blocks,
               int64_t block_size, int64_t max_seq_len)
    : storage_(backend, config, layout, num_blocks, block_size, max_seq_len), max_seq_len_(max_seq_len) {
  MOE_CHECK(max_seq_len > 0, "KV pool: the context length must be positive, got ", max_seq_len);
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

int64_t KvPool::blocks_in(uint64_t bytes, const ModelConfig& config, const ParallelLayout& layout, int64_t block_size) {
  const uint64_t per_block = KvStorage::block_bytes(config, layout, block_size);
  return per_block == 0 ? 0 : static_cast<int64_t>(bytes / per_block);
}

bool KvPool::reserve(std::vector<int32_t>& table, int64_t positions) {
  MOE_CHECK(positions <= max_seq_len_, "KV pool: a sequence of ", positions, " positions exceeds the context of ",
            max_seq_len_);
  const int64_t need = blocks_for(positions) - static_cast<int64_t>(table.size());
  if (need <= 0) return true;
  if (need > free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvPool::release(std::vector<int32_t>& table) {
  for (auto it = table.rbegin(); it != table.rend(); ++it) free_.push_back(*it);
  table.clear();
}

}  // namespace moe
