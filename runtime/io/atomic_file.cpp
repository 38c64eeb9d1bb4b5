#include "runtime/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "runtime/core/error.h"

namespace moe {

AtomicFile::AtomicFile(const std::filesystem::path& final_path)
    : final_(final_path), tmp_(final_path.string() + ".tmp-" + std::to_string(::getpid())) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_errno("cannot create");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_errno("write failed");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail_errno("close failed");
  if (::rename(tmp_.c_str(), final_.c_str()) != 0) fail_errno("cannot rename temporary file");
  committed_ = true;
}

void AtomicFile::fail_errno(const char* what) const {
  const int err = errno;
  fail(final_.string(), ": ", what, " (", tmp_.string(), "): ", std::strerror(err));
}

}  // namespace moe
