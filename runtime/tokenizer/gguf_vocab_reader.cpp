// read_gguf_vocab: the tokenizer.* metadata of a GGUF file into a GgufVocab.
#include <cstddef>
#include <string>

#include "runtime/core/error.h"
#include "runtime/io/gguf.h"
#include "runtime/tokenizer/gguf_vocab.h"

namespace moe {

GgufVocab read_gguf_vocab(const GgufFile& file) {
  GgufVocab v;
  const std::string where = file.path().string();
  if (!file.contains("tokenizer.ggml.model")) {
    fail(where, ": metadata key 'tokenizer.ggml.model' is absent: the file carries no tokenizer");
  }
  v.model = file.get_string("tokenizer.ggml.model");
  v.pre = file.opt_string("tokenizer.ggml.pre").value_or("");
  if (!file.contains("tokenizer.ggml.tokens")) fail(where, ": metadata key 'tokenizer.ggml.tokens' is absent");
  v.tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (file.contains("tokenizer.ggml.scores")) {
    const auto scores = file.get_f64_array("tokenizer.ggml.scores");
    v.scores.reserve(scores.size());
    for (const double s : scores) v.scores.push_back(static_cast<float>(s));
  }
  if (file.contains("tokenizer.ggml.token_type")) {
    const auto types = file.get_int_array("tokenizer.ggml.token_type");
    v.token_type.reserve(types.size());
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] < 0 || types[i] > 6) {
        fail(where, ": metadata key 'tokenizer.ggml.token_type': element ", i, " is ", types[i], " (expected 0..6)");
      }
      v.token_type.push_back(static_cast<int32_t>(types[i]));
    }
  }
  if (file.contains("tokenizer.ggml.merges")) v.merges = file.get_string_array("tokenizer.ggml.merges");
  v.bos_token_id = file.opt_i64("tokenizer.ggml.bos_token_id");
  v.eos_token_id = file.opt_i64("tokenizer.ggml.eos_token_id");
  v.unknown_token_id = file.opt_i64("tokenizer.ggml.unknown_token_id");
  v.padding_token_id = file.opt_i64("tokenizer.ggml.padding_token_id");
  v.add_bos_token = file.opt_bool("tokenizer.ggml.add_bos_token");
  v.add_eos_token = file.opt_bool("tokenizer.ggml.add_eos_token");
  v.add_space_prefix = file.opt_bool("tokenizer.ggml.add_space_prefix");
  v.chat_template = file.opt_string("tokenizer.chat_template").value_or("");
  return v;
}

}  // namespace moe
