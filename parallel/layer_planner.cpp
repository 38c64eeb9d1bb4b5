#include "parallel/layer_planner.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "runtime/core/error.h"

namespace moe::parallel {

LayerParams layer_params(const ModelConfig& c, bool per_token) {
  const int64_t h = c.hidden_size;
  const int64_t attn = h * c.q_width() * 2 + h * c.kv_width() * 2 + 2 * h;
  LayerParams p;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    int64_t n = attn;
    if (c.layer_is_moe[static_cast<size_t>(i)]) {
      const int64_t experts = per_token ? c.experts_per_token : c.num_experts;
      n += c.num_experts * h + experts * 3 * h * c.expert_intermediate;
      if (c.shared_intermediate > 0) n += 3 * h * c.shared_intermediate + h;
    } else {
      n += 3 * h * c.dense_intermediate;
    }
    p.layers.push_back(n);
  }
  p.first_extra = per_token ? h : c.vocab_size * h;
  // The LM head is read by every token, tied or not.
  p.last_extra = h + (c.tie_word_embeddings && !per_token ? 0 : c.vocab_size * h);
  return p;
}

std::vector<LayerRange> parse_layer_ranges(std::string_view spec, int64_t num_layers, int stages) {
  std::vector<LayerRange> out;
  size_t pos = 0;
  while (pos <= spec.size()) {
    const size_t comma = std::min(spec.find(',', pos), spec.size());
    const std::string_view item = spec.substr(pos, comma - pos);
    const size_t colon = item.find(':');
    LayerRange r;
    auto number = [&](std::string_view s, int64_t& v) {
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      return ec == std::errc{} && end == s.data() + s.size() && !s.empty();
    };
    if (colon == std::string_view::npos || !number(item.substr(0, colon), r.begin) ||
        !number(item.substr(colon + 1), r.end))
      fail("--layers: '", item, "' is not a layer range BEGIN:END (e.g. 0:12,12:32)");
    out.push_back(r);
    pos = comma + 1;
  }
  MOE_CHECK(static_cast<int>(out.size()) == stages, "--layers: ", out.size(), " ranges for ", stages,
            " pipeline stages (--pp ", stages, ")");
  int64_t next = 0;
  for (const LayerRange& r : out) {
    MOE_CHECK(r.begin == next, "--layers: range ", r.begin, ":", r.end, " should begin at layer ", next,
              " (ranges are contiguous and in order, from 0)");
    MOE_CHECK(r.end > r.begin, "--layers: range ", r.begin, ":", r.end, " is empty");
    MOE_CHECK(r.end <= num_layers, "--layers: range ", r.begin, ":", r.end, " goes past the model's ", num_layers,
              " layers");
    next = r.end;
  }
  MOE_CHECK(next == num_layers, "--layers: the ranges end at layer ", next, " but the model has ", num_layers);
  return out;
}

std::vector<LayerRange> balance_layers(const LayerParams& p, int stages) {
  const auto n = static_cast<int64_t>(p.layers.size());
  MOE_CHECK(stages >= 1 && n >= stages, "pipeline: ", stages, " stages need at least as many layers; the model has ",
            n);
  // cost(i, j): parameters of a stage running layers [i, j).
  std::vector<int64_t> prefix(static_cast<size_t>(n + 1), 0);
  for (int64_t i = 0; i < n; ++i)
    prefix[static_cast<size_t>(i + 1)] = prefix[static_cast<size_t>(i)] + p.layers[static_cast<size_t>(i)];
  auto cost = [&](int64_t i, int64_t j) {
    return prefix[static_cast<size_t>(j)] - prefix[static_cast<size_t>(i)] + (i == 0 ? p.first_extra : 0) +
           (j == n ? p.last_extra : 0);
  };
  // best[s][j]: the smallest largest-stage cost of layers [0, j) over s stages; cut[s][j] its split.
  constexpr int64_t kInf = std::numeric_limits<int64_t>::max();
  const auto S = static_cast<size_t>(stages);
  std::vector<std::vector<int64_t>> best(S + 1, std::vector<int64_t>(static_cast<size_t>(n + 1), kInf));
  std::vector<std::vector<int64_t>> cut(S + 1, std::vector<int64_t>(static_cast<size_t>(n + 1), 0));
  best[0][0] = 0;
  for (size_t s = 1; s <= S; ++s)
    for (int64_t j = static_cast<int64_t>(s); j <= n; ++j)
      for (int64_t i = static_cast<int64_t>(s) - 1; i < j; ++i) {
        const int64_t prev = best[s - 1][static_cast<size_t>(i)];
        if (prev == kInf) continue;
        const int64_t v = std::max(prev, cost(i, j));
        if (v < best[s][static_cast<size_t>(j)]) {
          best[s][static_cast<size_t>(j)] = v;
          cut[s][static_cast<size_t>(j)] = i;
        }
      }
  std::vector<LayerRange> out(S);
  int64_t end = n;
  for (size_t s = S; s >= 1; --s) {
    const int64_t begin = cut[s][static_cast<size_t>(end)];
    out[s - 1] = LayerRange{begin, end};
    end = begin;
  }
  return out;
}

std::string format_layer_ranges(std::span<const LayerRange> ranges) {
  std::string s;
  for (const LayerRange& r : ranges) s += str_cat(s.empty() ? "" : ",", r.begin, ":", r.end);
  return s;
}

}  // namespace moe::parallel
