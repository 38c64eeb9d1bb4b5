// Hugging Face tokenizer.json: the BPE tokenizers of the models we run, byte-level (Llama-3,
// Qwen2/3, DeepSeek, OLMoE) and SentencePiece-style with byte fallback (Mixtral, Llama-2).
// Encoding and decoding agree exactly with the `tokenizers` library on the same file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

class TokenizerImpl;  // normalizer, pre-tokenizer, BPE model, post-processor, decoder

class Tokenizer {
 public:
  // Reads <dir>/tokenizer.json and, when present, <dir>/tokenizer_config.json (BOS/EOS
  // handling, chat_template). Throws moe::Error naming the file and the unsupported or
  // malformed component (e.g. "model.type 'Unigram' is not supported").
  static Tokenizer load(const std::filesystem::path& dir);
  // Same from text in memory; `config_json` may be empty. `source` is used in messages.
  static Tokenizer from_json(const std::string& tokenizer_json, const std::string& config_json,
                             const std::filesystem::path& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // As tokenizers' encode(text, add_special_tokens): added tokens matched first and never
  // split, then normalizer, pre-tokenizer, BPE; with add_special_tokens the post-processor's
  // template (e.g. BOS) is applied.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // As tokenizers' decode(ids, skip_special_tokens). Invalid UTF-8 from byte tokens becomes
  // U+FFFD as in tokenizers. Throws moe::Error for an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  int64_t vocab_size() const;  // model vocab + added tokens (highest id + 1)
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" for an unknown id
  bool is_special(int32_t id) const;          // an added token marked special

  // From tokenizer_config.json (bos_token / eos_token may be strings or {"content": ...}).
  std::string bos_token() const;  // "" when none
  std::string eos_token() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  const std::string& chat_template() const;  // "" when tokenizer_config.json has none

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

// Turns a stream of generated ids into text as it becomes final: push() returns only text
// whose bytes are complete UTF-8 (a character split across tokens is held back until its last
// byte arrives), and the concatenation of all push() results and finish() equals
// tokenizer.decode(all ids) exactly (the SentencePiece leading-space strip included).
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = true);
  std::string push(int32_t id);
  // Whatever is still held back (an incomplete character at the very end decodes as U+FFFD).
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids before this are fully emitted and need no context
  size_t read_offset_ = 0;    // ids before this have been emitted
};

}  // namespace moe
