// Speculative prefetch bookkeeping: predictions (layer, expert, score) made after layer l by
// applying the routers of layers l+1..l+d to the current hidden state, ordered by deadline (the
// layer that will need them: earliest first) and score (highest first), and scored against what
// the routers really chose: recall = predicted and used / used, precision = predicted and used /
// predicted, per (step, layer) and in total. Pure bookkeeping; the owner issues the loads
// (runtime/offload/offloaded_experts.cpp), so it is tested on synthetic routing traces.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "runtime/offload/expert_key.h"

namespace moe {

struct Prediction {
  ExpertKey key;
  double score = 0;  // the router weight the speculative routing gave it (max over tokens)
};

struct PrefetchCounts {
  uint64_t predicted = 0;           // distinct (step, layer, expert) predictions scored
  uint64_t used = 0;                // distinct (step, layer, expert) the routers chose, in scored layers
  uint64_t predicted_and_used = 0;  // both
  double recall() const { return used ? static_cast<double>(predicted_and_used) / static_cast<double>(used) : 0; }
  double precision() const {
    return predicted ? static_cast<double>(predicted_and_used) / static_cast<double>(predicted) : 0;
  }
  PrefetchCounts& operator+=(const PrefetchCounts& o) {
    predicted += o.predicted;
    used += o.used;
    predicted_and_used += o.predicted_and_used;
    return *this;
  }
};

class Prefetcher {
 public:
  Prefetcher(int64_t first_layer, int64_t num_layers, int64_t num_experts);

  // A new step: predictions of the last one are dropped (they were about other tokens).
  void begin_step();
  // A prediction for a layer after the current one. Repeats (from several depths) merge,
  // keeping the highest score.
  void predict(ExpertKey k, double score);
  // The most urgent prediction not yet issued, or nullopt.
  std::optional<Prediction> peek() const;
  // Marks the one peek() returned as issued.
  void pop();
  // The router of `layer` chose `used`: scores that layer's predictions and forgets them (and
  // any unissued ones for it). Layers without predictions are not scored (returns zeros).
  PrefetchCounts observe(int64_t layer, std::span<const int32_t> used);
  const PrefetchCounts& totals() const { return totals_; }
  // Predictions waiting to be issued.
  size_t queued() const { return queue_.size(); }

 private:
  int64_t slot(ExpertKey k) const;
  int64_t first_, layers_, experts_;
  std::vector<double> predicted_;         // per (layer, expert): score, or < 0 when not predicted
  std::vector<int64_t> predicted_count_;  // per layer
  std::vector<Prediction> queue_;
  PrefetchCounts totals_;
};

}  // namespace moe
