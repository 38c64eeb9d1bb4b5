// Pipeline stages' layer ranges: parsed from `--layers 0:12,12:32`, or balanced by parameter
// bytes so that no stage holds much more than the others (the first stage also holds the
// embedding, the last the final norm and the LM head). Pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/engine/parallel_layout.h"
#include "runtime/model/config.h"

namespace moe::parallel {

// Parameters of each layer of `c` (attention, norms, router, routed and shared experts or the
// dense MLP), and of the model's ends: the embedding (first stage) and norm + LM head (last).
struct LayerParams {
  std::vector<int64_t> layers;
  int64_t first_extra = 0;
  int64_t last_extra = 0;
};
// `per_token`: count what one decoded token reads instead (top-k routed experts, one embedding
// row), to balance the stages' decode time rather than their memory.
LayerParams layer_params(const ModelConfig& c, bool per_token = false);

// "0:12,12:32": `stages` contiguous ranges covering [0, num_layers) in order. Throws moe::Error
// saying what is wrong (count, gap, overlap, empty range, past the end).
std::vector<LayerRange> parse_layer_ranges(std::string_view spec, int64_t num_layers, int stages);

// `stages` contiguous non-empty ranges minimising the largest stage's parameters (ties: the
// earliest split). Throws when there are fewer layers than stages.
std::vector<LayerRange> balance_layers(const LayerParams& p, int stages);

// "0:12,12:32"
std::string format_layer_ranges(std::span<const LayerRange> ranges);

}  // namespace moe::parallel
