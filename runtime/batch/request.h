// A generation request as the batch engine takes it (token ids in; tokens and text out) and the
// outputs it streams back. The HTTP server (launch/serve) turns OpenAI requests into these.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/engine/sampler.h"

namespace moe {

struct RequestParams {
  std::vector<int32_t> prompt;     // token ids, at least one
  int64_t max_tokens = 16;         // new tokens at most (prompt + max_tokens <= the engine's context)
  SamplingParams sampling;         // temperature, top-k, top-p, seed
  std::vector<int32_t> stop_ids;   // end the sequence when one is generated (the model's EOS ids)
  std::vector<std::string> stop;   // stop strings: the text ends before the first one (needs a tokenizer)
  float presence_penalty = 0.0f;   // OpenAI's: logit -= presence * (count > 0) + frequency * count
  float frequency_penalty = 0.0f;  //   over the tokens generated so far
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to those tokens' logits before sampling
  bool skip_special_tokens = true;                    // in the text
  bool keep_logits = false;                           // hand each step's (adjusted) logits to the callback (tests)
};

enum class FinishReason : uint8_t {
  kNone,       // still running
  kStop,       // a stop id or stop string
  kLength,     // max_tokens (or the context) reached
  kCancelled,  // cancel() or the engine stopped
  kError,      // the step failed (RequestOutput::error says why)
};
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error", ""

// What the engine hands the request's callback, on the engine thread, after each step that
// produced something for it. The reference is valid during the call only.
struct RequestOutput {
  uint64_t id = 0;
  std::vector<int32_t> tokens;  // new tokens of this step (one, or none on a final cancel/error)
  std::string text;             // their text, final (complete UTF-8, never part of a stop string)
  FinishReason finish = FinishReason::kNone;
  std::string stop_string;  // the stop string that ended it (finish kStop), else ""
  std::string error;        // finish kError
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;               // generated so far, including this step's
  std::chrono::steady_clock::time_point time;  // when this output was produced
  std::vector<float> logits;                   // keep_logits: the distribution this step's token was drawn from

  bool finished() const { return finish != FinishReason::kNone; }
};

using OutputCallback = std::function<void(const RequestOutput&)>;

}  // namespace moe
