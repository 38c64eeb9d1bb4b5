// Where this process sits in a pipeline x expert-parallel x tensor-parallel grid, as a small
// value passed by const reference (TensorRT-LLM's WorldConfig shape): rank = pp_rank * (ep * tp)
// + ep_rank * tp + tp_rank, so the ranks of one pipeline stage are consecutive and a stage's
// tensor-parallel groups are runs of tp ranks. The forward pass takes its layer range, its shard
// of heads and widths, and which routed experts it owns from here, so pipeline, tensor and expert
// parallelism split it without rewriting it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct LayerRange {
  int64_t begin = 0;  // first layer run by this stage
  int64_t end = 0;    // one past the last
  int64_t size() const { return end - begin; }
  bool contains(int64_t layer) const { return layer >= begin && layer < end; }
};

class ParallelLayout {
 public:
  // Everything in one process: tp = pp = ep = 1, all layers.
  static ParallelLayout single(int64_t num_layers);
  // Throws moe::Error when ranks are out of range or the layer range is empty or inverted.
  ParallelLayout(int tp_size, int tp_rank, int pp_size, int pp_rank, LayerRange layers, int64_t num_layers,
                 int ep_size = 1, int ep_rank = 0);

  int tp_size() const { return tp_size_; }
  int tp_rank() const { return tp_rank_; }
  int pp_size() const { return pp_size_; }
  int pp_rank() const { return pp_rank_; }
  int ep_size() const { return ep_size_; }
  int ep_rank() const { return ep_rank_; }
  // Ranks of one pipeline stage: tp x ep.
  int stage_size() const { return tp_size_ * ep_size_; }
  int world_size() const { return tp_size_ * pp_size_ * ep_size_; }
  int rank() const { return (pp_rank_ * ep_size_ + ep_rank_) * tp_size_ + tp_rank_; }
  bool is_single() const { return world_size() == 1; }
  const LayerRange& layers() const { return layers_; }
  // Layers of the whole model this layout was made for.
  int64_t num_layers() const { return num_layers_; }
  // The first stage embeds tokens; the last one applies the final norm and the LM head.
  bool is_first_stage() const { return layers_.begin == 0; }
  bool is_last_stage() const { return layers_.end == num_layers_; }
  // This rank's share of a dimension split tp_size ways (query heads, expert width); throws when
  // `n` does not divide evenly, naming `what`.
  int64_t tp_shard(int64_t n, const char* what) const;
  // Key/value heads of this rank: n_kv / tp when tp divides them; when there are fewer KV heads
  // than ranks (tp a multiple of n_kv) each rank keeps the one its query heads use (replicated
  // over tp / n_kv ranks). Throws otherwise.
  int64_t kv_heads(int64_t n_kv) const;
  // The first of this rank's KV heads in the model's numbering.
  int64_t kv_head_begin(int64_t n_kv) const;

  // Expert parallelism: owners[layer * num_experts + e] is the expert-parallel rank that holds
  // routed expert e of that layer (parallel/expert_placement.h). Without it, e % ep.
  void set_expert_owners(std::vector<int32_t> owners, int64_t num_experts);
  int expert_owner(int64_t layer, int64_t expert) const;
  bool owns_expert(int64_t layer, int64_t expert) const { return expert_owner(layer, expert) == ep_rank_; }

  std::string describe() const;

 private:
  int tp_size_ = 1, tp_rank_ = 0, pp_size_ = 1, pp_rank_ = 0, ep_size_ = 1, ep_rank_ = 0;
  LayerRange layers_;
  int64_t num_layers_ = 0;
  std::vector<int32_t> expert_owners_;
  int64_t num_experts_ = 0;
};

}  // namespace moe
