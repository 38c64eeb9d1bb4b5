#include "parallel/expert_placement.h"

#include <algorithm>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"

namespace moe::parallel {

std::vector<int32_t> round_robin_experts(int64_t num_layers, int64_t num_experts, int ep) {
  MOE_CHECK(ep >= 1, "expert parallel size must be at least 1");
  std::vector<int32_t> owners(static_cast<size_t>(num_layers * num_experts));
  for (int64_t l = 0; l < num_layers; ++l)
    for (int64_t e = 0; e < num_experts; ++e)
      owners[static_cast<size_t>(l * num_experts + e)] = static_cast<int32_t>(e % ep);
  return owners;
}

std::vector<int32_t> balance_experts(const std::vector<uint64_t>& counts, int64_t num_layers, int64_t num_experts,
                                     int ep) {
  MOE_CHECK(ep >= 1 && num_experts % ep == 0, "expert parallel size ", ep, " does not divide the ", num_experts,
            " routed experts");
  MOE_CHECK(counts.size() == static_cast<size_t>(num_layers * num_experts), "expert placement: ", counts.size(),
            " counts for ", num_layers, " layers x ", num_experts, " experts");
  const int64_t per_rank = num_experts / ep;
  std::vector<int32_t> owners(counts.size());
  std::vector<uint64_t> load(static_cast<size_t>(ep), 0);  // across layers: earlier layers' imbalance is evened out
  std::vector<int64_t> order(static_cast<size_t>(num_experts));
  for (int64_t l = 0; l < num_layers; ++l) {
    const uint64_t* c = counts.data() + l * num_experts;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return c[a] > c[b]; });
    std::vector<int64_t> taken(static_cast<size_t>(ep), 0);
    std::vector<uint64_t> layer_load(static_cast<size_t>(ep), 0);
    for (const int64_t e : order) {
      int best = -1;
      for (int r = 0; r < ep; ++r) {
        if (taken[static_cast<size_t>(r)] == per_rank) continue;
        if (best < 0 || layer_load[static_cast<size_t>(r)] < layer_load[static_cast<size_t>(best)] ||
            (layer_load[static_cast<size_t>(r)] == layer_load[static_cast<size_t>(best)] &&
             load[static_cast<size_t>(r)] < load[static_cast<size_t>(best)]))
          best = r;
      }
      owners[static_cast<size_t>(l * num_experts + e)] = best;
      ++taken[static_cast<size_t>(best)];
      layer_load[static_cast<size_t>(best)] += c[e];
    }
    for (int r = 0; r < ep; ++r) load[static_cast<size_t>(r)] += layer_load[static_cast<size_t>(r)];
  }
  return owners;
}

std::vector<uint64_t> rank_loads(const std::vector<uint64_t>& counts, const std::vector<int32_t>& owners, int ep) {
  std::vector<uint64_t> load(static_cast<size_t>(ep), 0);
  for (size_t i = 0; i < counts.size() && i < owners.size(); ++i) load[static_cast<size_t>(owners[i])] += counts[i];
  return load;
}

std::vector<uint64_t> read_routing_counts(const std::filesystem::path& path, int64_t num_layers, int64_t num_experts) {
  std::ifstream in(path);
  MOE_CHECK(in.good(), path.string(), ": cannot open the routing profile");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": not JSON: ", e.what());
  }
  MOE_CHECK(j.value("format", "") == "moe-routing-profile", path.string(),
            ": not a routing profile from `moe profile` (format is not moe-routing-profile)");
  std::vector<uint64_t> counts(static_cast<size_t>(num_layers * num_experts), 0);
  for (const auto& layer : j.at("counts")) {
    const int64_t l = layer.at("layer").get<int64_t>();
    const auto& per = layer.at("experts");
    MOE_CHECK(l >= 0 && l < num_layers && static_cast<int64_t>(per.size()) == num_experts, path.string(), ": layer ", l,
              " with ", per.size(), " experts does not fit this model (", num_layers, " layers x ", num_experts,
              " experts)");
    for (int64_t e = 0; e < num_experts; ++e)
      counts[static_cast<size_t>(l * num_experts + e)] = per[static_cast<size_t>(e)].get<uint64_t>();
  }
  return counts;
}

}  // namespace moe::parallel
