// tokenizer.json (runtime/tokenizer/tokenizer.h Tokenizer::from_json), then encode and decode.
// Parts: tokenizer.json, tokenizer_config.json (may be empty), the text to encode (default:
// a fixed sentence). Decoded besides the encoding: ids read from the text's bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = moe::fuzz::split_parts(moe::fuzz::as_view(data, size), 3);
  const std::string_view text =
      parts[2].empty() ? std::string_view("Hello world, <s> it's 12 o'clock ünïcode 😀") : parts[2];
  try {
    const moe::Tokenizer t = moe::Tokenizer::from_json(std::string(parts[0]), std::string(parts[1]), "fuzz");
    for (bool special : {false, true}) {
      const std::vector<int32_t> ids = t.encode(text, special);
      (void)t.decode(ids, special);
      moe::StreamingDecoder stream(t, special);
      for (int32_t id : ids) (void)stream.push(id);
      (void)stream.finish();
    }
    const int64_t vocab = t.vocab_size();
    if (vocab > 0) {
      std::vector<int32_t> raw;
      for (size_t i = 0; i + 1 < text.size() && raw.size() < 64; i += 2) {
        const auto v = static_cast<int64_t>(static_cast<uint8_t>(text[i])) << 8 | static_cast<uint8_t>(text[i + 1]);
        raw.push_back(static_cast<int32_t>(v % vocab));
      }
      (void)t.decode(raw, false);
      (void)t.decode(raw, true);
    }
    (void)t.bos_token();
    (void)t.eos_token();
    (void)t.bos_id();
    (void)t.eos_id();
    (void)t.token_to_id(text);
  } catch (const moe::Error&) {
  }
  return 0;
}
