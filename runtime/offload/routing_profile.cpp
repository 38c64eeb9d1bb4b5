#include "runtime/offload/routing_profile.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"

namespace moe {

RoutingProfiler::RoutingProfiler(const ModelConfig& c, const ModelWeights& w)
    : c_(c),
      w_(w),
      first_(w.layers.empty() ? 0 : w.layers.front().index),
      counts_(w.layers.size() * static_cast<size_t>(c.num_experts), 0) {}

void RoutingProfiler::begin_layer(int64_t layer, std::span<const int32_t> experts) {
  for (int32_t e : experts) ++counts_[static_cast<size_t>((layer - first_) * c_.num_experts + e)];
}

MlpWeights RoutingProfiler::acquire(int64_t layer, int32_t expert) {
  return w_.layers[static_cast<size_t>(layer - first_)].moe.experts[static_cast<size_t>(expert)];
}

uint64_t RoutingProfiler::count(int64_t layer, int32_t expert) const {
  return counts_[static_cast<size_t>((layer - first_) * c_.num_experts + expert)];
}

void RoutingProfiler::write_json(const std::filesystem::path& path) const {
  nlohmann::ordered_json counts = nlohmann::ordered_json::array();
  for (const LayerWeights& L : w_.layers) {
    if (!L.is_moe) continue;
    std::vector<uint64_t> per(static_cast<size_t>(c_.num_experts));
    for (int32_t e = 0; e < c_.num_experts; ++e) per[static_cast<size_t>(e)] = count(L.index, e);
    counts.push_back({{"layer", L.index}, {"experts", per}});
  }
  const nlohmann::ordered_json j = {{"format", "moe-routing-profile"},
                                    {"model", c_.summary()},
                                    {"tokens", tokens_},
                                    {"steps", steps_},
                                    {"counts", counts}};
  std::ofstream out(path, std::ios::trunc);
  MOE_CHECK(out.good(), path.string(), ": cannot open for writing the routing profile");
  out << j.dump(1) << "\n";
  MOE_CHECK(out.good(), path.string(), ": write failed");
}

}  // namespace moe
