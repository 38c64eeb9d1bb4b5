// The writing side of runtime/io/packed_store.h: streams tensors into dense.bin and experts.bin
// of `<out>.partial-<pid>/`, records every tensor's extent and xxh3-64 checksum, and on commit()
// writes manifest.json, fsyncs every file and the directory, and renames the directory onto
// `<out>`. Until commit() succeeds the partial directory is removed on destruction (error,
// exception, interrupt), so a complete-looking store never appears unless it is complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/quant/quant_format.h"

namespace moe {

// The manifest's "storage" spelling: quant_format_name for quantized tensors, else the
// safetensors dtype name ("F16", "BF16", ...).
std::string packed_storage_name(DType dtype, const std::optional<QuantFormat>& quant);

// The fields of manifest.json besides the tensors and experts the writer records.
struct PackedManifestInfo {
  std::string recipe;                // QuantRecipe::spec()
  nlohmann::ordered_json quantizer;  // e.g. {"name": "hqq", "iterations": 20, ...}
  nlohmann::ordered_json source;     // {"dir": ..., "config": <config.json object>}
  std::string created_by;            // "moe-runtime 0.1.0"
};

class PackedStoreWriter {
 public:
  static constexpr uint64_t kDenseAlign = 64;
  static constexpr uint64_t kExpertAlign = 4096;

  // Creates `<out>.partial-<pid>/` (a stale one of the same name is removed first). Throws
  // moe::Error when `out` exists and !replace.
  PackedStoreWriter(const std::filesystem::path& out, bool replace);
  PackedStoreWriter(const PackedStoreWriter&) = delete;
  PackedStoreWriter& operator=(const PackedStoreWriter&) = delete;
  ~PackedStoreWriter();

  // One tensor, written in pieces: begin_tensor, append..., end_tensor (which checks that
  // exactly `bytes` were appended). Tensors begun between begin_expert and end_expert go to
  // experts.bin, all others to dense.bin.
  void begin_tensor(std::string name, std::vector<int64_t> shape, DType dtype, std::optional<QuantFormat> quant,
                    uint64_t bytes);
  void append(const void* data, size_t n);
  void end_tensor();
  // Convenience: begin + append + end.
  void write_tensor(std::string name, std::vector<int64_t> shape, DType dtype, std::optional<QuantFormat> quant,
                    const void* data, uint64_t bytes);

  void begin_expert(int64_t layer, int64_t expert);
  void end_expert();

  // Copies `src` into the store directory under its file name.
  void copy_file(const std::filesystem::path& src);
  // Writes `text` into the store directory as `name` (a plain file name).
  void write_file(const std::string& name, const std::string& text);

  // Writes manifest.json, fsyncs, renames onto `out` (replacing an existing `out` when the
  // writer was made with replace). Throws moe::Error on failure (the partial dir is removed).
  void commit(const PackedManifestInfo& info);

  const std::filesystem::path& out() const { return out_; }
  const std::filesystem::path& partial_dir() const { return partial_; }
  uint64_t data_bytes() const;  // dense.bin + experts.bin so far
  size_t tensor_count() const { return tensors_.size(); }
  size_t expert_count() const { return extents_.size(); }

 private:
  class DataFile;
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    std::string storage;
    std::string file;
    uint64_t offset = 0;
    uint64_t bytes = 0;
    uint64_t xxh3 = 0;
  };
  struct Extent {
    int64_t layer, expert;
    uint64_t offset, bytes;
  };

  std::filesystem::path out_, partial_;
  bool replace_ = false;
  bool committed_ = false;
  std::unique_ptr<DataFile> dense_, expert_file_;
  DataFile* current_ = nullptr;  // the file of the tensor being written, or null
  Entry pending_;
  struct HashState;
  std::unique_ptr<HashState> hash_;
  uint64_t appended_ = 0;
  bool in_expert_ = false;
  Extent extent_{};
  std::vector<Entry> tensors_;
  std::vector<Extent> extents_;
};

}  // namespace moe
