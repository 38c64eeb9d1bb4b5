#include "runtime/engine/generator.h"

#include "runtime/engine/session.h"

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
  Session session(model, cache, vocab_size);  // holds nothing yet: the cache is rebuilt from position 0
  return session.generate(prompt, options, on_token);
}

Session::Session(Transformer& model, KvCache& cache, int64_t vocab_size)
    : model_(model), cache_(cache), vocab_size_(vocab_size) {}

int64_t Session::capacity() const {
  return cache_.capacity();
}

void Session::reset() {
  cached_.clear();
  cache_.clear();
  reused_ = 0;
}

GenerationResult Session::generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                                   const TokenCallback& on_token) {
  MOE_CHECK(!prompt.empty(), "generate: the prompt has no tokens");
  MOE_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  const int64_t needed = static_cast<int64_t>(prompt.size()) + options.max_new_tokens;
  MOE_CHECK(needed <= cache_.capacity(), "generate: prompt (", prompt.size(), " tokens) + max_new_tokens (",
            options.max_new_tokens, ") exceed the KV cache capacity of ", cache_.capacity());

  // Reuse the cached positions of the common prefix; at least one prompt token is run so that
  // there are logits to sample the first new token from.
  size_t keep = 0;
  while (keep < cached_.size() && keep < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
  keep = std::min(keep, prompt.size() - 1);
  cache_.truncate(static_cast<int64_t>(keep));
  cached_.resize(keep);
  reused_ = static_cast<int64_t>(keep);

  Sampler sampler(options.sampling);
  GenerationResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size() - keep);
  r.stop_reason = "max_new_tokens";
  if (options.max_new_tokens == 0) return r;

  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  const std::span<const int32_t> fresh = prompt.subspan(keep);
  model_.forward(fresh, cache_, false, logits);
  cached_.insert(cached_.end(), fresh.begin(), fresh.end());
  r.prefill_seconds = seconds_since(t0);
  std::chrono::steady_clock::time_point decode_start;
  for (int64_t i = 0;; ++i) {
    if (options.keep_logits) r.logits.insert(r.logits.end(), logits.begin(), logits.end());
    const int32_t next = sampler.sample(std::span<const float>(logits.data(), static_cast<size_t>(vocab_size_)));
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
    model_.forward(one, cache_, false, logits);
    cached_.push_back(next);
    ++r.decode_steps;
  }
  r.decode_seconds = r.decode_steps > 0 ? seconds_since(decode_start) : 0;
  return r;
}

}  // namespace moe
