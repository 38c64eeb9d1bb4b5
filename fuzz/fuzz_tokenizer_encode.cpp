// Text through the fixture tokenizers (tests/fixtures/tokenizers/*): byte 0 picks the tokenizer
// and add/skip_special_tokens, the rest is the text to encode. The streaming decoder must give
// what decode gives (runtime/tokenizer/tokenizer.h); ids read from the text's bytes are decoded
// too.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

const std::vector<moe::Tokenizer>& tokenizers() {
  static const std::vector<moe::Tokenizer> all = [] {
    std::vector<moe::Tokenizer> v;
    const std::filesystem::path root = MOE_FUZZ_FIXTURES;
    for (const char* dir : {"tokenizers/sentencepiece_bpe", "tokenizers/sentencepiece_metaspace",
                            "tokenizers/llama3_bytelevel", "tokenizers/qwen2_bytelevel_nfc"})
      v.push_back(moe::Tokenizer::load(root / dir));
    return v;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const moe::Tokenizer& t = tokenizers()[data[0] % tokenizers().size()];
  const bool special = (data[0] & 0x10) != 0;
  const std::string_view text = moe::fuzz::as_view(data + 1, size - 1);
  try {
    const std::vector<int32_t> ids = t.encode(text, special);
    const std::string back = t.decode(ids, special);
    moe::StreamingDecoder stream(t, special);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.finish();
    if (streamed != back) __builtin_trap();  // tokenizer.h: the stream equals decode(all ids)
  } catch (const moe::Error&) {
  }
  std::vector<int32_t> raw;
  const auto vocab = static_cast<uint32_t>(t.vocab_size());
  for (size_t i = 0; i + 2 < text.size() && raw.size() < 256; i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(text[i])) << 16 |
                       static_cast<uint32_t>(static_cast<uint8_t>(text[i + 1])) << 8 |
                       static_cast<uint8_t>(text[i + 2]);
    raw.push_back(static_cast<int32_t>(v % vocab));
  }
  try {
    (void)t.decode(raw, special);
  } catch (const moe::Error&) {
  }
  return 0;
}
