// Prefill + decode loop: feeds the prompt, samples, streams each token to a callback, stops at
// an EOS id or the token limit, and times each phase.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/engine/kv_cache.h"
#include "runtime/engine/sampler.h"
#include "runtime/engine/transformer.h"

namespace moe {

struct GenerationOptions {
  int64_t max_new_tokens = 32;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // usually the model's EOS ids; empty: only the limit stops
  bool keep_logits = false;       // record every step's logits (for --dump-logits)
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (a stop id, when hit, is the last one)
  std::string stop_reason;      // "eos" | "max_new_tokens"
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0;      // prompt forward, up to the first token's logits
  double first_token_seconds = 0;  // time to first token: prefill + sampling
  int64_t decode_steps = 0;        // forwards after the prompt (generated tokens - 1)
  double decode_seconds = 0;
  std::vector<float> logits;  // when keep_logits: (tokens.size(), vocab) row-major

  double prompt_tokens_per_second() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0; }
  double decode_tokens_per_second() const { return decode_seconds > 0 ? decode_steps / decode_seconds : 0; }
};

// Called with each new token as soon as it is chosen.
using TokenCallback = std::function<void(int32_t)>;

// Runs a whole sequence on a fresh cache (cleared first). Throws moe::Error when the prompt
// is empty or prompt + max_new_tokens exceed the cache capacity.
GenerationResult generate(Transformer& model, KvCache& cache, int64_t vocab_size, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TokenCallback& on_token = {});

}  // namespace moe
