// Speculative routing for expert prefetch: after layer l, the routers of layers l+1..l+depth
// applied to the current hidden state (each after its own norm), and the experts they would
// choose handed to a Prefetcher, each scored by its largest routing weight over the step's
// tokens. Shared by the CPU and the GPU expert providers; runs on the backend that holds the
// hidden state.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/model/config.h"
#include "runtime/model/weights.h"
#include "runtime/offload/prefetcher.h"

namespace moe {

class SpeculativeRouter {
 public:
  // `depth` 0: predict nothing (and allocate nothing). References must outlive this object.
  SpeculativeRouter(const ModelConfig& config, const ModelWeights& weights, Backend& backend, int64_t max_step_tokens,
                    int64_t depth);

  int64_t depth() const { return depth_; }
  // After global layer `layer`: hidden (n_tokens, H) is the residual stream entering the next
  // layer. Predictions for the MoE layers among the next `depth` go to `prefetcher`; `layer` may
  // come before this rank's layers (a previous pipeline stage's hidden state sent ahead).
  void predict(int64_t layer, const Tensor& hidden, Prefetcher& prefetcher);

 private:
  const ModelConfig& c_;
  const ModelWeights& w_;
  Backend& b_;
  int64_t depth_;
  Tensor norm_, logits_;  // (M, H), (M, E)
  std::vector<int32_t> ids_;
  std::vector<float> weights_;
  std::vector<float> best_;  // per expert
};

}  // namespace moe
