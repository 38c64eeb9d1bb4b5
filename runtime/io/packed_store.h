// Our on-disk model format, written by `moe convert`: a directory with
//   manifest.json   format name and version, the source config.json, the recipe, every tensor
//                   (name, shape, storage, file, offset, bytes, xxh3-64 checksum) and every
//                   routed expert's extent
//   dense.bin       every tensor that is not a routed expert, each 64-byte aligned
//   experts.bin     per (layer, expert): gate, up, down back to back, the expert 4 KiB aligned,
//                   so one expert is one aligned read (O_DIRECT-able) and one host->device copy
//   config.json, generation_config.json, tokenizer.json, tokenizer_config.json (copied)
// Expert tensors carry the architecture's per-expert Hub names whatever form the source used.
// A store is written under a temporary name and renamed into place when complete, so a
// partial output is never mistaken for a complete one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"
#include "runtime/io/mapped_file.h"

namespace moe {

struct PackedTensor {
  std::string name;
  std::vector<int64_t> shape;        // logical shape, outermost first
  DType dtype = DType::kF32;         // element type when not quantized
  std::optional<QuantFormat> quant;  // set for quantized tensors (rows of blocks)
  const uint8_t* data = nullptr;     // inside the mapped file; valid while the store is open
  uint64_t bytes = 0;
  std::string file;  // for messages
};

struct ExpertExtent {
  int64_t layer = 0;
  int64_t expert = 0;
  uint64_t offset = 0;  // in experts.bin, multiple of 4096
  uint64_t bytes = 0;
};

class PackedStore {
 public:
  static constexpr int kFormatVersion = 1;

  // True when `dir` holds a manifest.json (it may still be invalid).
  static bool is_packed(const std::filesystem::path& dir);
  // Maps and validates. Throws moe::Error naming the file and the problem for: missing or
  // invalid manifest, another format name, a version newer than kFormatVersion ("written by a
  // newer moe"), data files shorter than the manifest says (truncated), extents outside a
  // file, misaligned expert extents, and (when verify) any checksum mismatch, naming the tensor.
  static PackedStore open(const std::filesystem::path& dir, bool verify = true);

  bool contains(std::string_view name) const;
  PackedTensor tensor(std::string_view name) const;  // throws naming the tensor when absent
  std::vector<std::string> tensor_names() const;
  const std::vector<ExpertExtent>& experts() const { return experts_; }
  const nlohmann::json& source_config() const { return config_; }
  const std::string& recipe() const { return recipe_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  nlohmann::json config_;
  std::string recipe_;
  std::unique_ptr<MappedFile> dense_, experts_file_;
  std::map<std::string, PackedTensor, std::less<>> tensors_;
  std::vector<ExpertExtent> experts_;
};

}  // namespace moe
