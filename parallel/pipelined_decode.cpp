#include "parallel/pipelined_decode.h"

#include <algorithm>
#include <chrono>

#include "parallel/comm_collectives.h"
#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

constexpr int kTagHidden = 21, kTagToken = 22;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// One stage's part of one sequence's step: `tokens` (first stage) or the previous stage's hidden
// rows in, this stage's layers, the hidden rows out or (last stage) the greedy next token.
class StageStep {
 public:
  StageStep(Transformer& t, const ParallelLayout& L, Communicator& data, Backend& b, int64_t vocab)
      : t_(t), L_(L), c_(data), b_(b), stage_(L.stage_size()), logits_(static_cast<size_t>(vocab)) {}

  // Returns the next token on the last stage (-1 elsewhere).
  int32_t run(std::span<const int32_t> tokens, int64_t n, KvCache& cache) {
    const int rank = c_.rank();
    int32_t next = -1;
    for (int64_t begin = 0; begin < n; begin += t_.max_step_tokens()) {
      const int64_t k = std::min(t_.max_step_tokens(), n - begin);
      if (L_.is_first_stage()) {
        t_.embed(tokens.subspan(static_cast<size_t>(begin), static_cast<size_t>(k)));
      } else {
        const auto t0 = std::chrono::steady_clock::now();
        recv_rows(c_, b_, t_.hidden(), k, rank - stage_, kTagHidden, staging_);
        counters.recv_seconds += since(t0);
        counters.bytes_received += static_cast<uint64_t>(k * t_.hidden().dim(1)) * sizeof(float);
        ++counters.recvs;
      }
      t_.run_layers(k, cache);
      if (!L_.is_last_stage()) {
        const auto t0 = std::chrono::steady_clock::now();
        send_rows(c_, b_, t_.hidden(), k, rank + stage_, kTagHidden, staging_);
        counters.send_seconds += since(t0);
        counters.bytes_sent += static_cast<uint64_t>(k * t_.hidden().dim(1)) * sizeof(float);
        ++counters.sends;
      } else if (begin + k == n) {
        t_.logits_of_row(k - 1, logits_.data());
        next = argmax(logits_);
      }
    }
    return next;
  }

  PipelineCounters counters;

 private:
  Transformer& t_;
  const ParallelLayout& L_;
  Communicator& c_;
  Backend& b_;
  int stage_;
  std::vector<float> logits_;
  std::vector<float> staging_;
};

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
  StageStep step(t, layout, data, backend, vocab_size);
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
    after(s, step.run(prompts[s], static_cast<int64_t>(prompts[s].size()), *caches[s]));
  }
  r.prefill_seconds = since(t0);
  step.counters = PipelineCounters{};
  const auto t1 = std::chrono::steady_clock::now();
  for (int64_t k = 1; k < new_tokens; ++k)
    for (size_t s = 0; s < S; ++s) after(s, step.run(input(s), 1, *caches[s]));
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
