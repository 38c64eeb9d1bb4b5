// Reads experts from the packed store's experts.bin (the NVMe tier) into slot memory,
// asynchronously: submit() returns at once and an I/O thread completes the read while the
// caller computes. The file is opened with O_DIRECT so reads bypass the page cache (what a run
// measures is the drive, not RAM); where the filesystem refuses O_DIRECT the reader falls back
// to buffered reads and says so in describe(). Two engines behind one interface:
//   io_uring  (liburing, when built with it and the kernel allows it): one ring, owned here,
//             submissions under a lock from the caller, completions reaped by one thread;
//   pread     a pool of threads issuing pread(2), the portable fallback.
// A read is split into 1 MiB chunks so several are in flight at once. Background reads
// (ReadRequest::background) yield to every other read, chunk by chunk.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/offload/expert_key.h"

namespace moe {

// The completion of one read: the reader's threads report each chunk; the caller waits.
// Owned by the caller and reused; it must outlive the read it is given to.
class ReadCompletion {
 public:
  // Arms it for a read of `chunks` chunks.
  void arm(int64_t chunks);
  bool done() const { return pending_.load(std::memory_order_acquire) == 0; }
  // Blocks until every chunk completed; throws moe::Error with the reader's message when one
  // failed. Returns the seconds spent waiting.
  double wait();
  // Called by reader threads: one chunk finished (error empty when it succeeded).
  void chunk_done(const std::string& error);

 private:
  std::atomic<int64_t> pending_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string error_;  // guarded by mutex_
};

struct ReadRequest {
  ExpertKey key;           // for messages
  uint64_t offset = 0;     // in the file; a multiple of 4096
  uint64_t bytes = 0;      // bytes needed
  uint8_t* dst = nullptr;  // 4096-aligned, room for `bytes` rounded up to 4096
  ReadCompletion* done = nullptr;
  // A speculative read (prefetch): its chunks go to the drive one at a time and only while no
  // other read's chunk is in flight or queued, so a demand read waits for at most one chunk.
  bool background = false;
};

enum class ReaderKind : uint8_t { kAuto, kUring, kPread };

class ExpertReader {
 public:
  virtual ~ExpertReader() = default;
  // e.g. "io_uring (queue depth 64), O_DIRECT".
  virtual std::string describe() const = 0;
  // Queues the read; returns without waiting for it (it may wait for a free queue entry).
  virtual void submit(const ReadRequest& r) = 0;
  // True when the file is open with O_DIRECT.
  bool direct() const { return direct_; }
  // Bytes read from the file so far (what the drive delivered, rounded to 4 KiB blocks).
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }

 protected:
  bool direct_ = false;
  std::atomic<uint64_t> bytes_read_{0};
};

// "auto" (io_uring if available, else pread), "uring", "pread". Throws for other names.
ReaderKind parse_reader_kind(const std::string& name);
// True when this build has liburing.
bool reader_has_uring();

// Opens `path` for expert reads. kAuto prefers io_uring and falls back to the pread pool (the
// reason is part of describe()); kUring throws moe::Error when io_uring cannot be used. Throws
// naming the path and errno text when the file cannot be opened.
std::unique_ptr<ExpertReader> open_expert_reader(const std::filesystem::path& path, ReaderKind kind,
                                                 int pread_threads = 4);

}  // namespace moe
