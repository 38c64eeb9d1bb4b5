// Names one routed expert: (global layer index, expert index). The unit every tier, the cache
// and the prefetcher move and count.
#pragma once

#include <cstdint>
#include <functional>

namespace moe {

struct ExpertKey {
  int32_t layer = 0;
  int32_t expert = 0;

  friend bool operator==(const ExpertKey&, const ExpertKey&) = default;
  friend auto operator<=>(const ExpertKey&, const ExpertKey&) = default;
  // Dense index for per-expert arrays: layer * num_experts + expert.
  int64_t index(int64_t num_experts) const { return static_cast<int64_t>(layer) * num_experts + expert; }
};

struct ExpertKeyHash {
  size_t operator()(const ExpertKey& k) const noexcept {
    return std::hash<uint64_t>{}((static_cast<uint64_t>(static_cast<uint32_t>(k.layer)) << 32) |
                                 static_cast<uint32_t>(k.expert));
  }
};

}  // namespace moe
