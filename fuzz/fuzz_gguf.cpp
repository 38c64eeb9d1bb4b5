// GGUF files (runtime/io/gguf.h GgufFile::open), then what the engine derives from an open one:
// the model config (runtime/model/gguf_source.h gguf_model_config), the tensors under their
// Hugging Face names (GgufSource) and the tokenizer (runtime/tokenizer/gguf_vocab.h), which
// encodes and decodes a fixed text. Each stage runs even when another one refused the file.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "runtime/core/error.h"
#include "runtime/io/gguf.h"
#include "runtime/model/config.h"
#include "runtime/model/gguf_source.h"
#include "runtime/tokenizer/gguf_vocab.h"
#include "runtime/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moe::fuzz::scratch_dir() / "model.gguf";
  moe::fuzz::write_file(path, moe::fuzz::as_view(data, size));
  std::shared_ptr<const moe::GgufFile> file;
  try {
    file = std::make_shared<const moe::GgufFile>(moe::GgufFile::open(path));
  } catch (const moe::Error&) {
    return 0;
  }
  for (const moe::GgufTensorInfo& t : file->tensors()) moe::fuzz::touch(file->tensor_data(t), t.nbytes);
  for (const auto& [key, value] : file->metadata()) {
    try {
      (void)file->opt_string(key);
      (void)file->opt_u64(key);
      (void)file->opt_f64(key);
      if (value.type == moe::GgufValueType::kArray) {
        if (value.elem_type == moe::GgufValueType::kString) (void)file->get_string_array(key);
        (void)file->get_int_array(key);
      }
    } catch (const moe::Error&) {
    }
  }
  std::optional<moe::ModelConfig> config;
  try {
    config = moe::gguf_model_config(*file);
  } catch (const moe::Error&) {
  }
  if (config) {
    try {
      const moe::GgufSource source(file, *config);
      for (const std::string& name : source.tensor_names()) {
        const moe::TensorView v = source.tensor(name);
        moe::fuzz::touch(v.data, v.nbytes);
      }
    } catch (const moe::Error&) {
    }
  }
  try {
    const moe::GgufVocab vocab = moe::read_gguf_vocab(*file);
    const moe::Tokenizer t = moe::tokenizer_from_gguf_vocab(vocab, path);
    const std::vector<int32_t> ids = t.encode("Hello world, <s> ünïcode 😀 12345", true);
    (void)t.decode(ids, false);
    (void)t.decode(ids, true);
  } catch (const moe::Error&) {
  }
  return 0;
}
