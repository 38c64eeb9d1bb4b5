#include "runtime/engine/parallel_layout.h"

#include "runtime/core/error.h"

namespace moe {

ParallelLayout ParallelLayout::single(int64_t num_layers) {
  return ParallelLayout(1, 0, 1, 0, LayerRange{0, num_layers}, num_layers);
}

ParallelLayout::ParallelLayout(int tp_size, int tp_rank, int pp_size, int pp_rank, LayerRange layers,
                               int64_t num_layers, int ep_size, int ep_rank)
    : tp_size_(tp_size),
      tp_rank_(tp_rank),
      pp_size_(pp_size),
      pp_rank_(pp_rank),
      ep_size_(ep_size),
      ep_rank_(ep_rank),
      layers_(layers),
      num_layers_(num_layers) {
  MOE_CHECK(tp_size >= 1 && tp_rank >= 0 && tp_rank < tp_size, "parallel layout: tp rank ", tp_rank, " of size ",
            tp_size);
  MOE_CHECK(pp_size >= 1 && pp_rank >= 0 && pp_rank < pp_size, "parallel layout: pp rank ", pp_rank, " of size ",
            pp_size);
  MOE_CHECK(ep_size >= 1 && ep_rank >= 0 && ep_rank < ep_size, "parallel layout: ep rank ", ep_rank, " of size ",
            ep_size);
  MOE_CHECK(layers.begin >= 0 && layers.begin < layers.end && layers.end <= num_layers,
            "parallel layout: layer range [", layers.begin, ", ", layers.end, ") of a ", num_layers, "-layer model");
}

int64_t ParallelLayout::tp_shard(int64_t n, const char* what) const {
  MOE_CHECK(n % tp_size_ == 0, "tensor parallel size ", tp_size_, " does not divide ", what, " (", n, ")");
  return n / tp_size_;
}

int64_t ParallelLayout::kv_heads(int64_t n_kv) const {
  if (n_kv % tp_size_ == 0) return n_kv / tp_size_;
  MOE_CHECK(tp_size_ % n_kv == 0, "tensor parallel size ", tp_size_, " and num_key_value_heads (", n_kv,
            ") do not divide one another");
  return 1;
}

int64_t ParallelLayout::kv_head_begin(int64_t n_kv) const {
  if (n_kv % tp_size_ == 0) return tp_rank_ * (n_kv / tp_size_);
  kv_heads(n_kv);  // checks that the sizes fit
  return tp_rank_ / (tp_size_ / n_kv);
}

void ParallelLayout::set_expert_owners(std::vector<int32_t> owners, int64_t num_experts) {
  MOE_CHECK(num_experts > 0 && owners.size() == static_cast<size_t>(num_layers_ * num_experts),
            "parallel layout: ", owners.size(), " expert owners for ", num_layers_, " layers x ", num_experts,
            " experts");
  for (const int32_t o : owners)
    MOE_CHECK(o >= 0 && o < ep_size_, "parallel layout: expert owner ", o, " outside the ", ep_size_,
              " expert-parallel ranks");
  expert_owners_ = std::move(owners);
  num_experts_ = num_experts;
}

int ParallelLayout::expert_owner(int64_t layer, int64_t expert) const {
  if (expert_owners_.empty()) return static_cast<int>(expert % ep_size_);
  return expert_owners_[static_cast<size_t>(layer * num_experts_ + expert)];
}

std::string ParallelLayout::describe() const {
  std::string s = str_cat("tp ", tp_rank_, "/", tp_size_, ", pp ", pp_rank_, "/", pp_size_);
  if (ep_size_ > 1) s += str_cat(", ep ", ep_rank_, "/", ep_size_);
  return s + str_cat(", layers [", layers_.begin, ", ", layers_.end, ")");
}

}  // namespace moe
