// A GGUF file (llama.cpp's format) as a model: its metadata read as the Hugging Face config of
// the same model, and its tensors under the Hugging Face names bind_weights asks for, kept in
// their stored types (F32, F16, BF16 and ggml's block formats, kernels/quant/ggml_quants.h).
//
// Architectures: `llama` with experts (Mixtral), `qwen2moe`, `qwen3moe`, `olmoe`. Stacked expert
// tensors (blk.N.ffn_gate_exps, experts outermost) are viewed one expert at a time; the q and k
// rows that llama-arch converters permute for ggml's interleaved RoPE are put back in the
// Hugging Face order (a row copy, so any block type); nothing else is copied.
#pragma once

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/io/gguf.h"
#include "runtime/model/config.h"
#include "runtime/model/weight_source.h"

namespace moe {

// The Hugging Face config.json text for the model a GGUF file holds (architectures, sizes,
// rope, norms, experts, special ids), parsed by parse_model_config like any config. Throws
// moe::Error naming the file and the key for an unsupported `general.architecture` (listing
// the supported ones) or a required key that is missing or of the wrong type.
std::string gguf_config_json(const GgufFile& file);

// The ModelConfig of a GGUF file (gguf_config_json, parsed).
ModelConfig gguf_model_config(const GgufFile& file);

class GgufSource final : public WeightSource {
 public:
  // Maps every tensor of `file` to its Hugging Face name for `config` (gguf_model_config of the
  // same file). Throws moe::Error naming the file and tensor for a tensor of a ggml type the
  // kernels do not compute with (listing those they do), and for a stacked expert tensor whose
  // shape disagrees with the config.
  GgufSource(std::shared_ptr<const GgufFile> file, const ModelConfig& config);

  bool contains(std::string_view name) const override;
  TensorView tensor(std::string_view name) const override;
  const std::filesystem::path& dir() const override { return file_->path(); }
  const GgufFile& file() const { return *file_; }
  // Hugging Face names, sorted.
  std::vector<std::string> tensor_names() const;
  // Which GGUF tensor a Hugging Face name reads ("" when absent).
  std::string gguf_name(std::string_view hf_name) const;

 private:
  std::shared_ptr<const GgufFile> file_;
  std::map<std::string, TensorView, std::less<>> views_;
  std::map<std::string, std::string, std::less<>> origin_;  // HF name -> GGUF tensor name
  std::deque<std::vector<uint8_t>> owned_;                  // rows put back in the HF order
};

// True when `path` names a GGUF model file (a regular file starting with the GGUF magic).
bool is_gguf_model(const std::filesystem::path& path);

}  // namespace moe
