#include "runtime/engine/generator.h"

#include <algorithm>
#include <chrono>

#include "runtime/core/error.h"

namespace moe {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerationResult generate(Transformer& model, KvCache& cache, int64_t vocab_size, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TokenCallback& on_token) {
  MOE_CHECK(!prompt.empty(), "generate: the prompt has no tokens");
  MOE_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  const int64_t needed = static_cast<int64_t>(prompt.size()) + options.max_new_tokens;
  MOE_CHECK(needed <= cache.capacity(), "generate: prompt (", prompt.size(), " tokens) + max_new_tokens (",
            options.max_new_tokens, ") exceed the KV cache capacity of ", cache.capacity());
  cache.clear();
  Sampler sampler(options.sampling);
  GenerationResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  r.stop_reason = "max_new_tokens";
  if (options.max_new_tokens == 0) return r;

  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, cache, false, logits);
  r.prefill_seconds = seconds_since(t0);
  std::chrono::steady_clock::time_point decode_start;
  for (int64_t i = 0;; ++i) {
    if (options.keep_logits) r.logits.insert(r.logits.end(), logits.begin(), logits.end());
    const int32_t next = sampler.sample(std::span<const float>(logits.data(), static_cast<size_t>(vocab_size)));
    r.tokens.push_back(next);
    if (on_token) on_token(next);
    if (i == 0) {
      r.first_token_seconds = seconds_since(t0);
      decode_start = std::chrono::steady_clock::now();
    }
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end()) {
      r.stop_reason = "eos";
      break;
    }
    if (static_cast<int64_t>(r.tokens.size()) >= options.max_new_tokens) break;
    const int32_t one[1] = {next};
    model.forward(one, cache, false, logits);
    ++r.decode_steps;
  }
  r.decode_seconds = r.decode_steps > 0 ? seconds_since(decode_start) : 0;
  return r;
}

}  // namespace moe
