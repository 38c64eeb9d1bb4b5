// StreamingDecoder: the prefix/read offset method of text-generation-inference.
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"

namespace moe {

namespace {

bool ends_with_replacement(const std::string& s) {
  return s.size() >= tok::kReplacementChar.size() &&
         s.compare(s.size() - tok::kReplacementChar.size(), tok::kReplacementChar.size(), tok::kReplacementChar) == 0;
}

}  // namespace

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamingDecoder::push(int32_t id) {
  ids_.push_back(id);
  const std::span<const int32_t> all(ids_);
  // decode(ids[prefix:read]) is the context already emitted; decode(ids[prefix:]) extends it.
  const std::string old_text =
      tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_);
  if (new_text.size() > old_text.size() && !ends_with_replacement(new_text) &&
      new_text.compare(0, old_text.size(), old_text) == 0) {
    prefix_offset_ = read_offset_;
    read_offset_ = ids_.size();
    return new_text.substr(old_text.size());
  }
  return "";
}

std::string StreamingDecoder::finish() {
  const std::span<const int32_t> all(ids_);
  const std::string old_text =
      tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_);
  prefix_offset_ = read_offset_ = ids_.size();
  if (new_text.size() <= old_text.size()) return "";
  return new_text.substr(old_text.size());
}

}  // namespace moe
