// Read-only memory map of a whole file, owned (RAII). Move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace moe {

class MappedFile {
 public:
  // Maps `path` read-only; throws moe::Error naming the path and errno text on failure.
  // An empty file maps to data() == nullptr, size() == 0.
  static MappedFile open(const std::filesystem::path& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace moe
