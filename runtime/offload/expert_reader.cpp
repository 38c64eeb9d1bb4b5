#include "runtime/offload/expert_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/offload/expert_reader_internal.h"

namespace moe {

void ReadCompletion::arm(int64_t chunks) {
  std::lock_guard<std::mutex> lock(mutex_);
  error_.clear();
  pending_.store(chunks, std::memory_order_release);
}

double ReadCompletion::wait() {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  if (!error_.empty()) throw Error(error_);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void ReadCompletion::chunk_done(const std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!error.empty() && error_.empty()) error_ = error;
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) cv_.notify_all();
}

namespace detail {

Fd::~Fd() {
  if (fd >= 0) ::close(fd);
}

std::unique_ptr<Fd> open_for_reads(const std::filesystem::path& path, bool& direct, std::string& why_not_direct) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  direct = fd >= 0;
  if (fd < 0) {
    why_not_direct = std::strerror(errno);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    MOE_CHECK(fd >= 0, path.string(), ": cannot open for expert reads: ", std::strerror(errno));
  }
  return std::make_unique<Fd>(fd);
}

std::string read_error(const std::filesystem::path& path, ExpertKey key, uint64_t offset, uint64_t bytes,
                       const std::string& what) {
  return str_cat(path.string(), ": reading expert ", key.layer, ".", key.expert, " (", bytes, " bytes at offset ",
                 offset, ") failed: ", what);
}

uint64_t pread_fully(int fd, const std::filesystem::path& path, ExpertKey key, uint64_t offset, uint64_t needed,
                     uint8_t* dst) {
  uint64_t got = 0;
  while (got < needed) {
    const uint64_t len = round_block(needed - got);
    const ssize_t n = ::pread(fd, dst + got, len, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(read_error(path, key, offset, needed, std::strerror(errno)));
    }
    if (n == 0)
      throw Error(
          read_error(path, key, offset, needed,
                     str_cat("end of file after ", got, " bytes (the file is shorter than its manifest says)")));
    got += static_cast<uint64_t>(n);
  }
  return got;
}

}  // namespace detail

namespace {

using detail::Fd;

class PreadPoolReader final : public ExpertReader {
 public:
  PreadPoolReader(std::filesystem::path path, std::unique_ptr<Fd> fd, bool direct, std::string note, int threads)
      : path_(std::move(path)), fd_(std::move(fd)), note_(std::move(note)) {
    direct_ = direct;
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~PreadPoolReader() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  std::string describe() const override {
    return str_cat("pread pool (", threads_.size(), " threads), ", direct_ ? "O_DIRECT" : "buffered (page cache)",
                   note_.empty() ? "" : "; ", note_);
  }

  void submit(const ReadRequest& r) override {
    const int64_t chunks = detail::chunk_count(r.bytes);
    r.done->arm(chunks);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::deque<Chunk>& q = r.background ? background_ : queue_;
      for (int64_t i = 0; i < chunks; ++i) {
        const uint64_t begin = static_cast<uint64_t>(i) * detail::kChunkBytes;
        q.push_back(Chunk{r.key, r.offset + begin, std::min(detail::kChunkBytes, r.bytes - begin), r.dst + begin,
                          r.done, r.background});
      }
    }
    cv_.notify_all();
  }

 private:
  struct Chunk {
    ExpertKey key;
    uint64_t offset, bytes;
    uint8_t* dst;
    ReadCompletion* done;
    bool background;
  };

  // A background chunk may start only when nothing else is queued or in flight. Under mutex_.
  bool background_may_start() const {
    return queue_.empty() && foreground_running_ == 0 && background_running_ == 0 && !background_.empty();
  }

  void run() {
    for (;;) {
      Chunk c{};
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty() || background_may_start(); });
        if (!queue_.empty()) {
          c = queue_.front();
          queue_.pop_front();
          ++foreground_running_;
        } else if (background_may_start() || (stop_ && !background_.empty())) {
          c = background_.front();
          background_.pop_front();
          ++background_running_;
        } else {
          return;  // stopping, nothing left
        }
      }
      std::string error;
      try {
        bytes_read_.fetch_add(detail::pread_fully(fd_->fd, path_, c.key, c.offset, c.bytes, c.dst),
                              std::memory_order_relaxed);
      } catch (const Error& e) {
        error = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --(c.background ? background_running_ : foreground_running_);
      }
      cv_.notify_all();  // a background chunk may start now
      c.done->chunk_done(error);
    }
  }

  std::filesystem::path path_;
  std::unique_ptr<Fd> fd_;
  std::string note_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;                              // guarded by mutex_
  std::deque<Chunk> background_;                         // guarded by mutex_
  int foreground_running_ = 0, background_running_ = 0;  // guarded by mutex_
  bool stop_ = false;                                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace

ReaderKind parse_reader_kind(const std::string& name) {
  if (name == "auto") return ReaderKind::kAuto;
  if (name == "uring" || name == "io_uring") return ReaderKind::kUring;
  if (name == "pread") return ReaderKind::kPread;
  fail("--expert-reader must be auto, uring or pread, got '", name, "'");
}

bool reader_has_uring() {
#ifdef MOE_HAVE_LIBURING
  return true;
#else
  return false;
#endif
}

std::unique_ptr<ExpertReader> open_expert_reader(const std::filesystem::path& path, ReaderKind kind,
                                                 int pread_threads) {
  bool direct = false;
  std::string why_not_direct;
  std::unique_ptr<Fd> fd = detail::open_for_reads(path, direct, why_not_direct);
  std::string note = direct ? "" : str_cat("O_DIRECT refused: ", why_not_direct);
  switch (kind) {
    case ReaderKind::kUring:
    case ReaderKind::kAuto: {
#ifdef MOE_HAVE_LIBURING
      try {
        return detail::make_uring_reader(path, std::move(fd), direct, note);
      } catch (const Error& e) {
        if (kind == ReaderKind::kUring) throw;
        // The descriptor went with the failed attempt: open the file again for the pool.
        fd = detail::open_for_reads(path, direct, why_not_direct);
        note = str_cat(note.empty() ? "" : note + "; ", "io_uring unavailable: ", e.what());
      }
#else
      if (kind == ReaderKind::kUring)
        fail("--expert-reader uring: this build has no liburing (install liburing-dev and reconfigure)");
      note = str_cat(note.empty() ? "" : note + "; ", "built without liburing");
#endif
      break;
    }
    case ReaderKind::kPread: break;
  }
  MOE_CHECK(pread_threads > 0, "expert reader: pread threads must be positive, got ", pread_threads);
  return std::make_unique<PreadPoolReader>(path, std::move(fd), direct, note, pread_threads);
}

}  // namespace moe
