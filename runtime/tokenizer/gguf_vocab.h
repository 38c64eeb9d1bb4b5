// A Tokenizer from the tokenizer metadata of a GGUF file (llama.cpp's `tokenizer.ggml.*` keys).
//
// A GGUF carries no tokenizer.json: it has the vocabulary, scores or merges, token types, special
// ids and the *name* of the pre-tokenizer (`tokenizer.ggml.pre`; the regex lives in llama.cpp's
// src/llama-vocab.cpp). As transformers does (integrations/gguf/gguf_tokenizer_mapping.py), we
// synthesize the tokenizer.json + tokenizer_config.json that the model's own Hugging Face files
// hold and hand them to Tokenizer::from_json, so encoding agrees with `tokenizers` on that file.
//
// Supported (tokenizer.ggml.model / tokenizer.ggml.pre):
//   "gpt2"  byte-level BPE with merges; pre one of
//           "llama-bpe", "llama3", "llama-v3"  Llama 3: Split(Llama-3 regex) + ByteLevel,
//                                              ignore_merges (as llama.cpp and tokenizer.json)
//           "qwen2", "deepseek-r1-qwen"        Qwen2/Qwen3/Qwen-MoE: NFC + Split(Qwen2 regex)
//                                              + ByteLevel (NFC as in Qwen2's tokenizer.json)
//           "gpt-2", "olmo"                    ByteLevel(use_regex: the GPT-2 regex)
//   "llama" SentencePiece-style BPE (Mixtral, Llama-2): vocab with scores, byte fallback through
//           the <0xXX> tokens, merges rebuilt from the scores exactly as transformers'
//           generate_merges does (or taken from tokenizer.ggml.merges when present); the
//           prefix space as `legacy` Llama/Mixtral files (normalizer Prepend("▁") +
//           Replace(" ", "▁"), which is also what llama.cpp does: a space before the text and
//           after every special token); tokenizer.ggml.pre is ignored, as llama.cpp does.
// Token types: control (3) become special added tokens, user-defined (4) non-special added
// tokens, unknown (2) a special added token and the BPE unk_token; all match unnormalized text.
// BOS/EOS: add_bos_token / add_eos_token (llama default: add BOS, as llama.cpp and
// transformers) become a TemplateProcessing post-processor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace moe {

// The tokenizer metadata of a GGUF file, as plain values (no dependency on the GGUF reader).
struct GgufVocab {
  std::string model;                        // tokenizer.ggml.model: "llama" | "gpt2"
  std::string pre;                          // tokenizer.ggml.pre; "" when absent
  std::vector<std::string> tokens;          // tokenizer.ggml.tokens (n_vocab), id = index
  std::vector<float> scores;                // tokenizer.ggml.scores (n_vocab); empty when absent
  std::vector<int32_t> token_type;          // tokenizer.ggml.token_type (n_vocab); empty when absent
  std::vector<std::string> merges;          // tokenizer.ggml.merges, "a b"; empty when absent
  std::optional<int64_t> bos_token_id;      // tokenizer.ggml.bos_token_id
  std::optional<int64_t> eos_token_id;      // tokenizer.ggml.eos_token_id
  std::optional<int64_t> unknown_token_id;  // tokenizer.ggml.unknown_token_id
  std::optional<int64_t> padding_token_id;  // tokenizer.ggml.padding_token_id
  std::optional<bool> add_bos_token;        // tokenizer.ggml.add_bos_token
  std::optional<bool> add_eos_token;        // tokenizer.ggml.add_eos_token
  std::optional<bool> add_space_prefix;     // tokenizer.ggml.add_space_prefix (llama; default true)
  std::string chat_template;                // tokenizer.chat_template; "" when absent
};

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : int32_t {
  kUndefined = 0,  // treated as normal
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// What a GGUF does not say. For "llama" vocabularies, where the prefix space goes: kLegacy
// (default; Mixtral-8x7B / Llama-2 tokenizer.json, llama.cpp) prepends "▁" to every run of text
// between added tokens and keeps a leading space ("  x" -> "▁▁x"); kFirst is newer
// Mistral-style tokenizer.json (Metaspace prepend_scheme "first": only at the very start, and
// not when the text already starts with a space), which transformers 5's GGUF loader uses.
enum class SpmPrefixStyle { kLegacy, kFirst };
struct GgufTokenizerOptions {
  SpmPrefixStyle spm_prefix = SpmPrefixStyle::kLegacy;
};

// The synthesized Hugging Face files (JSON text).
struct GgufTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;  // bos_token, eos_token, unk_token, pad_token, add_*_token,
                                      // chat_template
};

// Validates `vocab` and writes the equivalent tokenizer.json / tokenizer_config.json. Throws
// moe::Error starting with `source` for: an unknown model or pre name (listing the supported
// ones), no tokens, scores / token_type of another length than tokens, a token type outside
// 0..6, a repeated token or one that is not UTF-8, a "gpt2" vocabulary without merges, a merge
// that is not "a b" or names a token (or a result) not in the vocabulary, a "llama" vocabulary
// with neither merges nor scores. A special id outside the vocabulary is ignored (as llama.cpp
// does), not refused.
GgufTokenizerFiles gguf_tokenizer_files(const GgufVocab& vocab, const std::filesystem::path& source,
                                        const GgufTokenizerOptions& options = {});

// gguf_tokenizer_files() handed to Tokenizer::from_json.
Tokenizer tokenizer_from_gguf_vocab(const GgufVocab& vocab, const std::filesystem::path& source,
                                    const GgufTokenizerOptions& options = {});

class GgufFile;
// The tokenizer.* keys of an open GGUF file (gguf_vocab_reader.cpp). Throws moe::Error naming
// the file and key when tokenizer.ggml.model or tokenizer.ggml.tokens is absent or a key has
// the wrong type.
GgufVocab read_gguf_vocab(const GgufFile& file);

}  // namespace moe
