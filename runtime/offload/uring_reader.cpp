// The io_uring engine of ExpertReader (built only with liburing). One ring owned here (RAII):
// callers submit under a lock; one thread reaps completions and reports them to each read's
// ReadCompletion. At most kQueueDepth chunks are in flight; a submitter waits for a free entry.
// Background reads wait in a queue of their own: the reaper queues their next chunk when no
// other chunk is in flight.
#ifdef MOE_HAVE_LIBURING

#include <liburing.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/offload/expert_reader_internal.h"

namespace moe::detail {
namespace {

constexpr unsigned kQueueDepth = 64;
constexpr uint64_t kStopTag = ~uint64_t{0};

class UringReader final : public ExpertReader {
 public:
  UringReader(std::filesystem::path path, std::unique_ptr<Fd> fd, bool direct, std::string note)
      : path_(std::move(path)), fd_(std::move(fd)), note_(std::move(note)), records_(kQueueDepth) {
    direct_ = direct;
    const int rc = io_uring_queue_init(kQueueDepth, &ring_, 0);
    if (rc < 0) fail("io_uring_queue_init: ", std::strerror(-rc));
    for (unsigned i = 0; i < kQueueDepth; ++i) free_.push_back(i);
    reaper_ = std::thread([this] { reap(); });
  }

  ~UringReader() override {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      io_uring_sqe* sqe = next_sqe(lock);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kStopTag);
      io_uring_submit(&ring_);
    }
    reaper_.join();
    io_uring_queue_exit(&ring_);
  }

  std::string describe() const override {
    return str_cat("io_uring (queue depth ", kQueueDepth, "), ", direct_ ? "O_DIRECT" : "buffered (page cache)",
                   note_.empty() ? "" : "; ", note_);
  }

  void submit(const ReadRequest& r) override {
    const int64_t chunks = chunk_count(r.bytes);
    r.done->arm(chunks);
    std::unique_lock<std::mutex> lock(mutex_);
    for (int64_t i = 0; i < chunks; ++i) {
      const uint64_t begin = static_cast<uint64_t>(i) * kChunkBytes;
      const Record rec{r.key,         r.offset + begin, std::min(kChunkBytes, r.bytes - begin),
                       r.dst + begin, r.done,           r.background};
      if (r.background) {
        background_.push_back(rec);
        continue;
      }
      free_cv_.wait(lock, [&] { return !free_.empty(); });
      ++foreground_running_;
      queue_read(lock, rec);
    }
    if (r.background) start_background(lock);
    const int rc = io_uring_submit(&ring_);
    MOE_CHECK(rc >= 0, path_.string(), ": io_uring_submit: ", std::strerror(-rc));
  }

 private:
  struct Record {
    ExpertKey key;
    uint64_t offset = 0, bytes = 0;
    uint8_t* dst = nullptr;
    ReadCompletion* done = nullptr;
    bool background = false;
  };

  // Puts one chunk on the submission queue (a free id must exist). Under mutex_.
  void queue_read(std::unique_lock<std::mutex>& lock, const Record& rec) {
    const unsigned id = free_.back();
    free_.pop_back();
    records_[id] = rec;
    io_uring_sqe* sqe = next_sqe(lock);
    io_uring_prep_read(sqe, fd_->fd, rec.dst, static_cast<unsigned>(round_block(rec.bytes)), rec.offset);
    io_uring_sqe_set_data64(sqe, id);
  }

  // The next background chunk, when no other chunk is in flight. Under mutex_; the caller
  // submits. Returns whether one was queued.
  bool start_background(std::unique_lock<std::mutex>& lock) {
    if (foreground_running_ > 0 || background_running_ > 0 || background_.empty() || free_.empty()) return false;
    ++background_running_;
    queue_read(lock, background_.front());
    background_.pop_front();
    return true;
  }

  // A submission entry; flushes the queue to the kernel when it is full. Called under mutex_.
  io_uring_sqe* next_sqe(std::unique_lock<std::mutex>&) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void reap() {
    for (;;) {
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) {
        // The ring itself failed: nothing more will complete. Fail whatever is in flight.
        std::lock_guard<std::mutex> lock(mutex_);
        fatal_ = str_cat(path_.string(), ": io_uring_wait_cqe: ", std::strerror(-rc));
        return;
      }
      const uint64_t tag = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (tag == kStopTag) return;
      Record rec = records_[tag];
      std::string error;
      if (res < 0) {
        error = read_error(path_, rec.key, rec.offset, rec.bytes, std::strerror(-res));
      } else if (static_cast<uint64_t>(res) < rec.bytes) {
        // A short read (end of file, or a rare partial completion): finish it synchronously.
        try {
          const uint64_t got = static_cast<uint64_t>(res);
          if (res == 0 || got % kBlock != 0)
            throw Error(
                read_error(path_, rec.key, rec.offset, rec.bytes,
                           str_cat("end of file after ", got, " bytes (the file is shorter than its manifest says)")));
          bytes_read_.fetch_add(
              got + pread_fully(fd_->fd, path_, rec.key, rec.offset + got, rec.bytes - got, rec.dst + got),
              std::memory_order_relaxed);
        } catch (const Error& e) {
          error = e.what();
        }
      } else {
        bytes_read_.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
      }
      {
        std::unique_lock<std::mutex> lock(mutex_);
        free_.push_back(static_cast<unsigned>(tag));
        --(rec.background ? background_running_ : foreground_running_);
        if (start_background(lock)) io_uring_submit(&ring_);
      }
      free_cv_.notify_one();
      rec.done->chunk_done(error);
    }
  }

  std::filesystem::path path_;
  std::unique_ptr<Fd> fd_;
  std::string note_;
  io_uring ring_{};
  std::mutex mutex_;  // guards the submission queue, free_ and fatal_
  std::condition_variable free_cv_;
  std::vector<Record> records_;  // by id; an id is owned by the submitter until reaped
  std::vector<unsigned> free_;
  std::deque<Record> background_;                        // chunks of background reads, not yet queued
  int foreground_running_ = 0, background_running_ = 0;  // chunks queued to the ring
  std::string fatal_;
  std::thread reaper_;
};

}  // namespace

std::unique_ptr<ExpertReader> make_uring_reader(const std::filesystem::path& path, std::unique_ptr<Fd> fd, bool direct,
                                                std::string note) {
  return std::make_unique<UringReader>(path, std::move(fd), direct, std::move(note));
}

}  // namespace moe::detail

#endif  // MOE_HAVE_LIBURING
