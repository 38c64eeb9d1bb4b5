#include "runtime/engine/kv_cache.h"

#include "runtime/core/error.h"

namespace moe {
namespace {
int64_t checked_capacity(int64_t capacity) {
  MOE_CHECK(capacity > 0, "KV cache capacity must be positive, got ", capacity);
  return capacity;
}
}  // namespace

KvCache::KvCache(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t capacity)
    : storage_(backend, config, layout, 1, checked_capacity(capacity)) {}

void KvCache::truncate(int64_t n) {
  MOE_CHECK(n >= 0 && n <= length_, "KV cache: cannot truncate ", length_, " positions to ", n);
  length_ = n;
}

}  // namespace moe
