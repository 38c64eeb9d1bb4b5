#include "runtime/engine/kv_storage.h"

#include "runtime/core/error.h"

namespace moe {

KvStorage::KvStorage(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t num_blocks,
                     int64_t block_size, int64_t max_seq_len)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      max_seq_len_(max_seq_len > 0 ? max_seq_len : num_blocks * block_size) {
  MOE_CHECK(num_blocks > 0 && block_size > 0, "KV storage needs blocks: got ", num_blocks, " blocks of ", block_size,
            " positions");
  MOE_CHECK(num_blocks * block_size <= INT32_MAX, "KV storage of ", num_blocks, " x ", block_size,
            " positions is more than the 2^31 positions it can address");
  const int64_t kv_heads = layout.kv_heads(config.num_kv_heads);
  for (int64_t i = 0; i < layout.layers().size(); ++i) {
    k_.push_back(backend.alloc(DType::kF32, {num_blocks, kv_heads, block_size, config.head_dim}));
    v_.push_back(backend.alloc(DType::kF32, {num_blocks, kv_heads, block_size, config.head_dim}));
    bytes_ += k_.back().nbytes() + v_.back().nbytes();
  }
}

uint64_t KvStorage::block_bytes(const ModelConfig& config, const ParallelLayout& layout, int64_t block_size) {
  const int64_t kv_heads = layout.kv_heads(config.num_kv_heads);
  return static_cast<uint64_t>(layout.layers().size()) * 2 * static_cast<uint64_t>(kv_heads) *
         static_cast<uint64_t>(block_size) * static_cast<uint64_t>(config.head_dim) * sizeof(float);
}

}  // namespace moe
