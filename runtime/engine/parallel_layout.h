// Where this process sits in a tensor-parallel x pipeline-parallel grid, as a small immutable
// value passed by const reference (TensorRT-LLM's WorldConfig shape): tp rank = rank % tp,
// pp rank = rank / tp. The forward pass takes its layer range and its shard of heads and
// expert widths from here, so pipeline and tensor parallelism split it without rewriting it.
#pragma once

#include <cstdint>
#include <string>

namespace moe {

struct LayerRange {
  int64_t begin = 0;  // first layer run by this stage
  int64_t end = 0;    // one past the last
  int64_t size() const { return end - begin; }
  bool contains(int64_t layer) const { return layer >= begin && layer < end; }
};

class ParallelLayout {
 public:
  // Everything in one process: tp = pp = 1, all layers.
  static ParallelLayout single(int64_t num_layers);
  // Throws moe::Error when ranks are out of range or the layer range is empty or inverted.
  ParallelLayout(int tp_size, int tp_rank, int pp_size, int pp_rank, LayerRange layers, int64_t num_layers);

  int tp_size() const { return tp_size_; }
  int tp_rank() const { return tp_rank_; }
  int pp_size() const { return pp_size_; }
  int pp_rank() const { return pp_rank_; }
  int world_size() const { return tp_size_ * pp_size_; }
  int rank() const { return pp_rank_ * tp_size_ + tp_rank_; }
  const LayerRange& layers() const { return layers_; }
  // Layers of the whole model this layout was made for.
  int64_t num_layers() const { return num_layers_; }
  // The first stage embeds tokens; the last one applies the final norm and the LM head.
  bool is_first_stage() const { return layers_.begin == 0; }
  bool is_last_stage() const { return layers_.end == num_layers_; }
  // This rank's share of a dimension split tp_size ways (heads, expert width); throws when
  // `n` does not divide evenly, naming `what`.
  int64_t tp_shard(int64_t n, const char* what) const;
  std::string describe() const;

 private:
  int tp_size_ = 1, tp_rank_ = 0, pp_size_ = 1, pp_rank_ = 0;
  LayerRange layers_;
  int64_t num_layers_ = 0;
};

}  // namespace moe
