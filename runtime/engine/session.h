// A conversation with one model: keeps the KV cache between calls and knows which tokens it
// holds, so a new prompt that extends (or shares a prefix with) the previous one only prefills
// what differs. `moe chat` runs every turn through one Session.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/engine/generator.h"

namespace moe {

class Session {
 public:
  // References must outlive the Session.
  Session(Transformer& model, KvCache& cache, int64_t vocab_size);

  // Generates after `prompt`, reusing the cached positions of the longest common prefix of
  // `prompt` and the tokens already in the cache (the previous prompts and replies).
  // GenerationResult::prompt_tokens counts only the tokens actually prefilled; reused_tokens()
  // tells how many were reused. Throws moe::Error when prompt + max_new_tokens do not fit.
  GenerationResult generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                            const TokenCallback& on_token = {});

  // Forget everything (a new conversation).
  void reset();
  int64_t reused_tokens() const { return reused_; }
  // Tokens whose keys and values are in the cache, in order.
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  int64_t capacity() const;

 private:
  Transformer& model_;
  KvCache& cache_;
  int64_t vocab_size_;
  std::vector<int32_t> cached_;
  int64_t reused_ = 0;
};

}  // namespace moe
