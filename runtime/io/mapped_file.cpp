#include "runtime/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "runtime/core/error.h"

namespace moe {
namespace {

// Closes a descriptor when it goes out of scope (the mapping outlives it).
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_;
};

// "<path>: <what>: <strerror(errno)>"; reads errno, so call it right after the failing call.
[[noreturn]] void fail_errno(const std::filesystem::path& path, const char* what) {
  const int err = errno;
  fail(path.string(), ": ", what, ": ", std::strerror(err));
}

}  // namespace

MappedFile MappedFile::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "cannot open");
  const FdCloser closer(fd);

  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno(path, "cannot stat");
  MOE_CHECK(S_ISREG(st.st_mode), path.string(), ": not a regular file");
  MOE_CHECK(st.st_size >= 0 && static_cast<uint64_t>(st.st_size) <= std::numeric_limits<size_t>::max(), path.string(),
            ": file size ", st.st_size, " cannot be mapped");

  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<uint64_t>(st.st_size);
  if (file.size_ == 0) return file;  // mmap of length 0 is an error; an empty file has no data

  void* p = ::mmap(nullptr, static_cast<size_t>(file.size_), PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail_errno(path, "cannot mmap");
  file.data_ = static_cast<const uint8_t*>(p);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
}

}  // namespace moe
