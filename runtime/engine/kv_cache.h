// Keys and values of every attention layer this stage runs, in backend memory, f32.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/model/config.h"

namespace moe {

class KvCache {
 public:
  // Room for `capacity` positions in each of the layout's layers:
  // k, v per layer (num_kv_heads / tp, capacity, head_dim).
  KvCache(Backend& backend, const ModelConfig& config, const ParallelLayout& layout, int64_t capacity);

  Tensor& k(int64_t local_layer) { return k_[static_cast<size_t>(local_layer)]; }
  Tensor& v(int64_t local_layer) { return v_[static_cast<size_t>(local_layer)]; }
  int64_t capacity() const { return capacity_; }
  // Positions filled so far (the next token's position).
  int64_t length() const { return length_; }
  void advance(int64_t n) { length_ += n; }
  // Forget everything (a new sequence); memory is kept.
  void clear() { length_ = 0; }
  // Keep only the first n positions (n <= length()): later tokens will overwrite the rest.
  void truncate(int64_t n);
  uint64_t bytes() const { return bytes_; }

 private:
  std::vector<Tensor> k_, v_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace moe
