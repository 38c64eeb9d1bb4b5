#include "runtime/engine/kv_cache.h"

#include "runtime/core/error.h"

namespace moe {

KvCache::KvCache(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t capacity)
    : capacity_(capacity) {
  MOE_CHECK(capacity > 0, "KV cache capacity must be positive, got ", capacity);
  const int64_t kv_heads = layout.tp_shard(config.num_kv_heads, "num_key_value_heads");
  for (int64_t i = 0; i < layout.layers().size(); ++i) {
    k_.push_back(backend.alloc(DType::kF32, {kv_heads, capacity, config.head_dim}));
    v_.push_back(backend.alloc(DType::kF32, {kv_heads, capacity, config.head_dim}));
    bytes_ += k_.back().nbytes() + v_.back().nbytes();
  }
}

void KvCache::truncate(int64_t n) {
  MOE_CHECK(n >= 0 && n <= length_, "KV cache: cannot truncate ", length_, " positions to ", n);
  length_ = n;
}

}  // namespace moe
