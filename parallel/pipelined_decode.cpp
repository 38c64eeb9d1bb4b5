#include "parallel/pipelined_decode.h"

#include <algorithm>
#include <chrono>

#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

constexpr int kTagToken = 22;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

PipelinedDecodeResult pipelined_decode(Transformer& t, const ParallelLayout& layout, Communicator& control,
                                       Communicator& data, Backend& backend, int64_t vocab_size,
                                       std::span<const std::vector<int32_t>> prompts, int64_t new_tokens,
                                       std::span<KvCache* const> caches) {
  MOE_CHECK(!prompts.empty() && prompts.size() == caches.size(), "pipelined decode: ", prompts.size(), " prompts for ",
            caches.size(), " caches");
  MOE_CHECK(new_tokens >= 1, "pipelined decode: at least one new token");
  MOE_CHECK(data.size() == layout.world_size() && data.rank() == layout.rank(), "pipelined decode: rank ", data.rank(),
            " of ", data.size(), " does not match the layout (", layout.describe(), ")");
  const auto S = prompts.size();
  const int stage = layout.stage_size(), rank = data.rank();
  // The last stage's rank i hands tokens to the first stage's rank i (same tensor/expert place).
  const int back_to = rank % stage, back_from = (layout.pp_size() - 1) * stage + rank % stage;
  const bool one_stage = layout.pp_size() == 1;
  StagePass step(t, layout, data, backend, vocab_size);
  std::vector<float> logits;
  // This stage's part of sequence s's next rows; the last stage returns the greedy token.
  auto run = [&](std::span<const int32_t> tokens, int64_t n, KvCache& cache) {
    step.run(tokens, n, cache, false, logits);
    return layout.is_last_stage() ? argmax(logits) : -1;
  };
  PipelinedDecodeResult r;
  r.tokens.assign(S, {});
  std::vector<int32_t> last(S, -1);  // the first stage's next input token per sequence

  auto after = [&](size_t s, int32_t next) {
    if (layout.is_last_stage()) {
      r.tokens[s].push_back(next);
      if (!one_stage)
        control.send(&next, sizeof next, back_to, kTagToken);
      else
        last[s] = next;
    }
  };
  auto input = [&](size_t s) {
    if (layout.is_first_stage() && !one_stage) control.recv(&last[s], sizeof(int32_t), back_from, kTagToken);
    return std::span<const int32_t>(&last[s], 1);
  };

  const auto t0 = std::chrono::steady_clock::now();
  for (size_t s = 0; s < S; ++s) {
    caches[s]->clear();
    after(s, run(prompts[s], static_cast<int64_t>(prompts[s].size()), *caches[s]));
  }
  r.prefill_seconds = since(t0);
  step.counters = PipelineCounters{};
  const auto t1 = std::chrono::steady_clock::now();
  for (int64_t k = 1; k < new_tokens; ++k)
    for (size_t s = 0; s < S; ++s) after(s, run(input(s), 1, *caches[s]));
  // The first stage still has each sequence's last token to take (it is not run).
  if (layout.is_first_stage() && !one_stage)
    for (size_t s = 0; s < S; ++s) input(s);
  control.barrier();
  r.decode_seconds = since(t1);
  r.decode_tokens = static_cast<int64_t>(S) * (new_tokens - 1);
  r.counters = step.counters;
  // Every rank returns the tokens: the last stage's rank 0 of its stage broadcasts them.
  const int root = (layout.pp_size() - 1) * stage;
  for (size_t s = 0; s < S; ++s) {
    r.tokens[s].resize(static_cast<size_t>(new_tokens));
    control.broadcast(r.tokens[s].data(), r.tokens[s].size() * sizeof(int32_t), root);
  }
  return r;
}

}  // namespace moe::parallel
