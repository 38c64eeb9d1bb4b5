// A file written under `<final>.tmp-<pid>` and renamed onto the final path by commit(); the
// temporary is removed if commit() is never reached, so a partial file never appears under the
// final name. Errors name the final path, the temporary and the OS error.
#pragma once

#include <cstddef>
#include <filesystem>

namespace moe {

class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& final_path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Writes all n bytes (retrying short writes and EINTR); throws moe::Error on failure.
  void write(const void* data, size_t n);
  // Closes and renames onto the final path; throws moe::Error on failure.
  void commit();

 private:
  [[noreturn]] void fail_errno(const char* what) const;

  std::filesystem::path final_;
  std::filesystem::path tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace moe
