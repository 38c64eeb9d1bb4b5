// Expert parallelism: which rank of a stage owns each routed expert. By default expert e of
// every layer goes to rank e % ep; from a routing profile (`moe profile`) each layer's experts
// are dealt out most used first to the rank with the least routed load so far, each rank taking
// the same number of experts (memory stays even), so the ranks' expert work balances.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace moe::parallel {

// owners[layer * num_experts + e] = the expert-parallel rank that owns it.
std::vector<int32_t> round_robin_experts(int64_t num_layers, int64_t num_experts, int ep);
// counts[layer * num_experts + e]: how often the router chose it. Throws when num_experts is not
// a multiple of ep.
std::vector<int32_t> balance_experts(const std::vector<uint64_t>& counts, int64_t num_layers, int64_t num_experts,
                                     int ep);
// The routed load of each rank (sum of counts it owns), over all layers.
std::vector<uint64_t> rank_loads(const std::vector<uint64_t>& counts, const std::vector<int32_t>& owners, int ep);

// Reads the counts of a `moe profile` JSON file for a model of these sizes; throws naming the
// file when it is not one or was made for another shape.
std::vector<uint64_t> read_routing_counts(const std::filesystem::path& path, int64_t num_layers, int64_t num_experts);

}  // namespace moe::parallel
