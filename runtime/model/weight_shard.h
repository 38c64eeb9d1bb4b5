// Tensor-parallel shards of stored tensors: a range of rows is a view into the mapped file (a
// rank reads only its bytes), a range of columns is gathered row by row into memory the shard
// owns. Quantized tensors are cut along whole groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/io/tensor_view.h"

namespace moe {

// Host buffers holding column shards; owned by the ModelWeights that use them.
struct ShardStorage {
  std::vector<std::shared_ptr<std::byte[]>> buffers;
  uint64_t bytes = 0;
};

// Index `i` of the outermost dimension, one rank lower (one expert of a fused (E, ...) tensor).
TensorView view_index(const TensorView& v, int64_t i);
// Rows [begin, begin + n) of the outermost dimension (a 1-D tensor: elements).
TensorView view_rows(const TensorView& v, int64_t begin, int64_t n);
// Columns [begin, begin + n) of a rank-2 tensor, copied into a buffer appended to `storage`.
// Quantized: begin and n must be multiples of the group size (throws naming the tensor).
TensorView copy_cols(const TensorView& v, int64_t begin, int64_t n, ShardStorage& storage);

}  // namespace moe
