#include "runtime/engine/parallel_layout.h"

#include "runtime/core/error.h"

namespace moe {

ParallelLayout ParallelLayout::single(int64_t num_layers) {
  return ParallelLayout(1, 0, 1, 0, LayerRange{0, num_layers}, num_layers);
}

ParallelLayout::ParallelLayout(int tp_size, int tp_rank, int pp_size, int pp_rank, LayerRange layers,
                               int64_t num_layers)
    : tp_size_(tp_size),
      tp_rank_(tp_rank),
      pp_size_(pp_size),
      pp_rank_(pp_rank),
      layers_(layers),
      num_layers_(num_layers) {
  MOE_CHECK(tp_size >= 1 && tp_rank >= 0 && tp_rank < tp_size, "parallel layout: tp rank ", tp_rank, " of size ",
            tp_size);
  MOE_CHECK(pp_size >= 1 && pp_rank >= 0 && pp_rank < pp_size, "parallel layout: pp rank ", pp_rank, " of size ",
            pp_size);
  MOE_CHECK(layers.begin >= 0 && layers.begin < layers.end && layers.end <= num_layers,
            "parallel layout: layer range [", layers.begin, ", ", layers.end, ") of a ", num_layers, "-layer model");
}

int64_t ParallelLayout::tp_shard(int64_t n, const char* what) const {
  MOE_CHECK(n % tp_size_ == 0, "tensor parallel size ", tp_size_, " does not divide ", what, " (", n, ")");
  return n / tp_size_;
}

std::string ParallelLayout::describe() const {
  return str_cat("tp ", tp_rank_, "/", tp_size_, ", pp ", pp_rank_, "/", pp_size_, ", layers [", layers_.begin, ", ",
                 layers_.end, ")");
}

}  // namespace moe
