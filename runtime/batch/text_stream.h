// A sequence's generated ids as text that is final: complete UTF-8 characters only (the
// tokenizer's StreamingDecoder) and never the beginning of a stop string, which is held back until
// the next tokens show whether the stop string follows. The sequence's text is the concatenation
// of everything push() and finish() return; with stop strings it ends right before the first one,
// as OpenAI's `stop` (and vLLM's) define it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace moe {

class TextStream {
 public:
  // References must outlive the stream. Stop strings must not be empty.
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop, bool skip_special_tokens);

  // Adds `id`; returns the text that became final. After a stop string appeared, stopped() is
  // true, the returned text ends right before it, and later calls return "".
  std::string push(int32_t id);
  // The end of the sequence without a stop string: whatever is still held back.
  std::string finish();
  bool stopped() const { return stopped_; }
  // The stop string that ended the text ("" when none did).
  const std::string& matched() const { return matched_; }

 private:
  // Emits the final part of held_: all of it but a suffix that could start a stop string.
  std::string release();

  StreamingDecoder decoder_;
  std::vector<std::string> stop_;
  std::string held_;  // decoded, not yet emitted
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace moe
