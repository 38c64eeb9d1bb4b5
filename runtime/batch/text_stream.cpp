#include "runtime/batch/text_stream.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace moe {

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop, bool skip_special_tokens)
    : decoder_(tokenizer, skip_special_tokens), stop_(std::move(stop)) {
  for (const std::string& s : stop_) MOE_CHECK(!s.empty(), "stop strings must not be empty");
}

std::string TextStream::push(int32_t id) {
  if (stopped_) return "";
  held_ += decoder_.push(id);
  return release();
}

std::string TextStream::finish() {
  if (stopped_) return "";
  held_ += decoder_.finish();
  std::string out = release();
  if (!stopped_) {
    out += held_;
    held_.clear();
  }
  return out;
}

std::string TextStream::release() {
  // The earliest stop string in the held text (the longer one where two start at the same place).
  size_t best = std::string::npos;
  for (const std::string& s : stop_) {
    const size_t at = held_.find(s);
    if (at != std::string::npos && (at < best || (at == best && s.size() > matched_.size()))) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, best);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of a stop string.
  size_t keep = 0;
  for (const std::string& s : stop_) {
    const size_t most = std::min(s.size() - 1, held_.size());
    for (size_t n = most; n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

}  // namespace moe
