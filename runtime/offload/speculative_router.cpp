#include "runtime/offload/speculative_router.h"

#include <algorithm>
#include <span>

namespace moe {

SpeculativeRouter::SpeculativeRouter(const ModelConfig& config, const ModelWeights& weights, Backend& backend,
                                     int64_t max_step_tokens, int64_t depth)
    : c_(config), w_(weights), b_(backend), depth_(depth) {
  if (depth_ <= 0) return;
  const int64_t m = max_step_tokens;
  norm_ = b_.alloc(DType::kF32, {m, c_.hidden_size});
  logits_ = b_.alloc(DType::kF32, {m, c_.num_experts});
  ids_.resize(static_cast<size_t>(m * c_.experts_per_token));
  weights_.resize(ids_.size());
  best_.resize(static_cast<size_t>(c_.num_experts));
}

void SpeculativeRouter::predict(int64_t layer, const Tensor& hidden, Prefetcher& prefetcher) {
  const int64_t n = hidden.dim(0), top_k = c_.experts_per_token;
  const int64_t first = w_.layers.front().index;
  const auto assignments = static_cast<size_t>(n * top_k);
  for (int64_t j = 1; j <= depth_; ++j) {
    const int64_t local = layer - first + j;
    if (local < 0) continue;  // a layer of the stage before (a hint sent ahead, parallel/stage_pass.h)
    if (local >= static_cast<int64_t>(w_.layers.size())) break;
    const LayerWeights& lw = w_.layers[static_cast<size_t>(local)];
    if (!lw.is_moe) continue;
    // The router of layer l+j applied to the hidden state after layer l (its own norm first).
    Tensor xn = norm_.first_rows(n), logits = logits_.first_rows(n);
    b_.rms_norm(hidden, lw.ffn_norm, c_.rms_norm_eps, xn);
    b_.linear(xn, lw.moe.router, Tensor{}, logits);
    b_.route_topk(logits, top_k, c_.renormalize_topk, std::span(ids_).first(assignments),
                  std::span(weights_).first(assignments));
    std::fill(best_.begin(), best_.end(), -1.0f);
    for (size_t a = 0; a < assignments; ++a) {
      float& best = best_[static_cast<size_t>(ids_[a])];
      best = std::max(best, weights_[a]);
    }
    // Only the experts this rank holds (expert parallelism leaves the others' weights empty).
    for (size_t e = 0; e < best_.size(); ++e)
      if (best_[e] >= 0 && !lw.moe.experts[e].gate.empty())
        prefetcher.predict(ExpertKey{static_cast<int32_t>(lw.index), static_cast<int32_t>(e)}, best_[e]);
  }
}

}  // namespace moe
