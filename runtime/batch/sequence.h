// One request's state inside the batch engine: its tokens (prompt, then generated), how many of
// them have their keys and values in the KV pool, its blocks there, and its own sampler and text
// stream. Owned by the engine; the scheduler moves pointers to it between the waiting queue and
// the running set.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "runtime/batch/request.h"
#include "runtime/batch/text_stream.h"
#include "runtime/engine/sampler.h"

namespace moe {

struct Sequence {
  Sequence(uint64_t id_, RequestParams params_, OutputCallback on_output_)
      : id(id_),
        params(std::move(params_)),
        on_output(std::move(on_output_)),
        tokens(params.prompt),
        prompt_len(static_cast<int64_t>(params.prompt.size())),
        sampler(params.sampling) {}

  uint64_t id;
  RequestParams params;
  OutputCallback on_output;
  std::vector<int32_t> tokens;  // the prompt, then every generated token
  int64_t prompt_len;
  int64_t cached = 0;           // tokens[0 .. cached) have their keys and values in the pool
  std::vector<int32_t> blocks;  // its KV pool blocks, in position order
  Sampler sampler;
  std::optional<TextStream> text;               // when the engine has a tokenizer
  std::unordered_map<int32_t, int32_t> counts;  // generated token counts (penalties only)
  bool cancelled = false;
  FinishReason finished = FinishReason::kNone;  // set once; the engine then retires it
  int64_t preemptions = 0;

  int64_t generated() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
  // Tokens still to feed through the model: the prompt's remainder while prefilling (all of
  // prompt and output after a preemption), then 1 (the last sampled token) while decoding.
  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - cached; }
};

}  // namespace moe
