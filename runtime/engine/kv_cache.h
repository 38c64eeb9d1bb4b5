// The KV cache of one sequence: a KvStorage of a single block holding `capacity` positions,
// and how many of them are filled.
#pragma once

#include <cstdint>

#include "runtime/engine/kv_storage.h"

namespace moe {

class KvCache {
 public:
  // Room for `capacity` positions in each of the layout's layers:
  // k, v per layer (1, num_kv_heads / tp, capacity, head_dim).
  KvCache(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t capacity);

  KvStorage& storage() { return storage_; }
  int64_t capacity() const { return storage_.block_size(); }
  // Positions filled so far (the next token's position).
  int64_t length() const { return length_; }
  void advance(int64_t n) { length_ += n; }
  // Forget everything (a new sequence); memory is kept.
  void clear() { length_ = 0; }
  // Keep only the first n positions (n <= length()): later tokens will overwrite the rest.
  void truncate(int64_t n);
  uint64_t bytes() const { return storage_.bytes(); }

 private:
  KvStorage storage_;
  int64_t length_ = 0;
};

}  // namespace moe
