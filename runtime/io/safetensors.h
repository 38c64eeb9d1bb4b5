// safetensors reader: one file, or a sharded checkpoint directory with
// model.safetensors.index.json. Memory-mapped; every header is validated the way the reference
// reader (huggingface/safetensors, tensor.rs) validates it before any tensor is touched, and
// every failure names the file, the tensor and what is wrong. Nothing is read out of bounds.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/io/mapped_file.h"
#include "runtime/io/tensor_view.h"

namespace moe {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets relative to the start of the data buffer, [begin, end)
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Opens, maps and validates. Throws moe::Error (message starts with the file path) for:
  // file shorter than 8 bytes; header length > 100,000,000 or past the end of the file;
  // header not UTF-8 / not a JSON object / invalid JSON; duplicate keys; an entry that is not
  // an object or lacks dtype/shape/data_offsets; unknown dtype; negative or non-integer dims;
  // numel overflow; end < begin; data_offsets disagreeing with shape x dtype size; tensors
  // (sorted by offset) that overlap or leave gaps or do not start at 0; a data buffer whose
  // length is not exactly the last end; __metadata__ that is not a string->string map.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  // Entries in header order.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when absent.
  const SafetensorsEntry* find(std::string_view name) const;
  // Throws moe::Error "<file>: tensor '<name>' not found" when absent.
  TensorView view(std::string_view name) const;

 private:
  MappedFile file_;
  const uint8_t* buffer_ = nullptr;  // start of the data buffer inside file_
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory: either model.safetensors, or model.safetensors.index.json with
// {"metadata": {...}, "weight_map": {"tensor": "shard file"}} and the shards it names, or
// (when neither exists) every *.safetensors in the directory, which must not share names.
class SafetensorsCheckpoint {
 public:
  // Throws moe::Error for: no safetensors files; index that is invalid JSON or lacks
  // weight_map; a shard named by the index that is missing (or a path escaping the directory);
  // a tensor the index places in a shard that does not hold it; a tensor present in two files.
  static SafetensorsCheckpoint open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  bool contains(std::string_view name) const;
  // Throws moe::Error "<dir>: tensor '<name>' not found in the checkpoint" when absent.
  TensorView tensor(std::string_view name) const;
  // Sorted.
  std::vector<std::string> tensor_names() const;
  // Sum of all tensors' bytes.
  uint64_t total_bytes() const;

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> where_;
};

// Writes one safetensors file: header JSON (keys sorted, padded with spaces to a multiple of
// 8 bytes), then the tensors back to back in the order added. Used by `moe make-tiny`,
// tests and benchmarks. Throws moe::Error on a duplicate name, a size that disagrees with
// shape x dtype, or an I/O failure (writes to a temporary and renames, so a partial file is
// never left under the final name).
class SafetensorsWriter {
 public:
  void add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  void set_metadata(std::map<std::string, std::string> metadata);
  void write(const std::filesystem::path& path) const;

 private:
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace moe
