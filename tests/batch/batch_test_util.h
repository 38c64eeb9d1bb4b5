// What the batch tests share: serial generation (one sequence at a time through generate() and a
// KvCache, the reference) and batched generation (every prompt submitted at once to a
// BatchEngine over a paged KvPool), each recording the tokens and every step's logits.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "runtime/backend/cpu_backend.h"
#include "runtime/batch/batch_engine.h"
#include "runtime/engine/generator.h"
#include "runtime/engine/kv_pool.h"
#include "runtime/model/model.h"

namespace moe::test {

struct SeqRun {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // (tokens, vocab)
  FinishReason finish = FinishReason::kNone;
};

// Greedy, `steps` new tokens, no stop ids.
inline SeqRun serial_run(const Model& m, Backend& backend, const std::vector<int32_t>& prompt, int64_t steps,
                         int64_t chunk = 256, ExpertProvider* provider = nullptr) {
  Transformer t(m.config(), m.weights(), m.layout(), backend, chunk);
  t.set_expert_provider(provider);
  KvCache cache(backend, m.config(), m.layout(), static_cast<int64_t>(prompt.size()) + steps);
  GenerationOptions g;
  g.max_new_tokens = steps;
  g.keep_logits = true;
  const GenerationResult r = generate(t, cache, m.config().vocab_size, prompt, g);
  return SeqRun{r.tokens, r.logits, FinishReason::kLength};
}

struct BatchSetup {
  int64_t max_seqs = 8;
  int64_t max_step_tokens = 8;  // small: prompts are chunked and share steps with decodes
  int64_t block_size = 4;
  int64_t kv_blocks = 0;  // 0: enough for every sequence at once
  int64_t context = 64;
};

// Submits every prompt at once and steps until all are done.
inline std::vector<SeqRun> batched_run(const Model& m, Backend& backend,
                                       const std::vector<std::vector<int32_t>>& prompts, int64_t steps,
                                       const BatchSetup& s, ExpertProvider* provider = nullptr,
                                       BatchEngineStats* stats = nullptr) {
  Transformer t(m.config(), m.weights(), m.layout(), backend, s.max_step_tokens, s.max_seqs);
  t.set_expert_provider(provider);
  const int64_t blocks = s.kv_blocks > 0
                             ? s.kv_blocks
                             : static_cast<int64_t>(prompts.size()) * ((s.context + s.block_size - 1) / s.block_size);
  KvPool pool(backend, m.config(), m.layout(), blocks, s.block_size, s.context);
  BatchEngineOptions o;
  o.limits = SchedulerLimits{s.max_seqs, s.max_step_tokens, 0};
  weight_traffic(m.weights(), o);
  BatchEngine engine(t, pool, m.config().vocab_size, nullptr, o);
  std::vector<SeqRun> runs(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    RequestParams p;
    p.prompt = prompts[i];
    p.max_tokens = steps;
    p.keep_logits = true;
    engine.submit(std::move(p), [&runs, i](const RequestOutput& out) {
      runs[i].tokens.insert(runs[i].tokens.end(), out.tokens.begin(), out.tokens.end());
      runs[i].logits.insert(runs[i].logits.end(), out.logits.begin(), out.logits.end());
      if (out.finished()) runs[i].finish = out.finish;
    });
  }
  engine.run_until_idle();
  if (stats) *stats = engine.stats();
  return runs;
}

// Prompts of different lengths (3 .. 21 tokens) with random ids below `vocab`.
inline std::vector<std::vector<int32_t>> mixed_prompts(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(1, static_cast<int32_t>(vocab - 1));
  std::vector<std::vector<int32_t>> prompts(n);
  for (size_t i = 0; i < n; ++i) {
    prompts[i].resize(3 + (i * 7) % 19);
    for (int32_t& t : prompts[i]) t = id(rng);
  }
  return prompts;
}

}  // namespace moe::test
