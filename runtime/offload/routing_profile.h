// Routing statistics for static placement (`moe profile`): an ExpertProvider that serves the
// resident experts unchanged and counts, per (layer, expert), the forward calls whose router
// chose it. Written as JSON that `--placement` reads (most used experts first).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "runtime/engine/expert_provider.h"
#include "runtime/model/config.h"
#include "runtime/model/weights.h"

namespace moe {

class RoutingProfiler final : public ExpertProvider {
 public:
  RoutingProfiler(const ModelConfig& c, const ModelWeights& w);

  void begin_step(int64_t n_tokens) override { tokens_ += n_tokens; }
  void begin_layer(int64_t layer, std::span<const int32_t> experts) override;
  MlpWeights acquire(int64_t layer, int32_t expert) override;
  void release(int64_t, int32_t) override {}
  void end_layer(int64_t, const Tensor&) override {}
  void end_step() override { ++steps_; }

  uint64_t count(int64_t layer, int32_t expert) const;
  // {"tokens": T, "steps": S, "counts": [{"layer": l, "experts": [c0, c1, ...]}, ...]}
  void write_json(const std::filesystem::path& path) const;

 private:
  const ModelConfig& c_;
  const ModelWeights& w_;
  int64_t first_ = 0;
  std::vector<uint64_t> counts_;  // (layer - first) * E + expert
  int64_t tokens_ = 0, steps_ = 0;
};

}  // namespace moe
