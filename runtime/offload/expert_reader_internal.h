// Pieces the two reader engines share (expert_reader.cpp, uring_reader.cpp). Not a public header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "runtime/offload/expert_reader.h"

namespace moe::detail {

inline constexpr uint64_t kChunkBytes = uint64_t{1} << 20;  // multiple of 4096
inline constexpr uint64_t kBlock = 4096;

inline uint64_t round_block(uint64_t n) {
  return (n + kBlock - 1) / kBlock * kBlock;
}
inline int64_t chunk_count(uint64_t bytes) {
  return static_cast<int64_t>((bytes + kChunkBytes - 1) / kChunkBytes);
}

// An open file descriptor, closed on destruction.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
};

// Opens `path` read-only, with O_DIRECT when the filesystem allows it. `why_not_direct`
// receives the reason when it does not.
std::unique_ptr<Fd> open_for_reads(const std::filesystem::path& path, bool& direct, std::string& why_not_direct);

// The message for a failed or short read.
std::string read_error(const std::filesystem::path& path, ExpertKey key, uint64_t offset, uint64_t bytes,
                       const std::string& what);

// Reads bytes [offset, offset + needed) into dst with pread (loops over short reads). Returns
// the bytes the drive delivered; throws moe::Error on failure or end of file.
uint64_t pread_fully(int fd, const std::filesystem::path& path, ExpertKey key, uint64_t offset, uint64_t needed,
                     uint8_t* dst);

#ifdef MOE_HAVE_LIBURING
// The io_uring engine; throws moe::Error saying why when the ring cannot be set up.
std::unique_ptr<ExpertReader> make_uring_reader(const std::filesystem::path& path, std::unique_ptr<Fd> fd, bool direct,
                                                std::string note);
#endif

}  // namespace moe::detail
