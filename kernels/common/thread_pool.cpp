#include "kernels/common/thread_pool.h"

#include <linux/futex.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define MOE_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define MOE_PAUSE() asm volatile("yield")
#else
#define MOE_PAUSE() ((void)0)
#endif

namespace moe::cpu {
namespace {

// Idle spin before a worker sleeps, and before a waiting caller yields: about 0.5 ms here (one
// pause ~26 ns on this AMD EPYC VM), longer than the gap between two regions of a decode step.
constexpr int kSpins = 20000;
// A caller that spun this long (~100 us) for another thread's chunk: that thread was preempted.
constexpr int kStraggleSpins = 4000;
// Jobs run on the caller alone after such a wait (doubling while they recur).
constexpr int kSoloJobs = 64, kMaxSoloJobs = 8192;
// Parallel jobs in a row without such a wait after which the doubling starts again from kSoloJobs
// (about two decode steps).
constexpr int kCleanJobs = 256;
// At most this many chunks per job: the claim counter has 16 bits.
constexpr int64_t kMaxChunks = 0xFFFF;

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

// The claim word: generation (32 bits) | chunks (16) | next chunk (16). A worker claims chunk
// `next` of generation g by one compare-exchange; a stale generation or next == chunks: nothing
// left to take.
constexpr uint64_t pack(uint32_t gen, uint64_t chunks, uint64_t next) {
  return (uint64_t{gen} << 32) | (chunks << 16) | next;
}

class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static destructors
    return *pool;
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  void resize(int n) {
    n = n < 1 ? 1 : n;
    const std::lock_guard<std::mutex> lock(submit_);
    if (n == threads()) return;
    stop_workers();
    threads_.store(n, std::memory_order_relaxed);
    stop_.store(false);
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { worker(); });
  }

  void run(int64_t n, int64_t grain, detail::ChunkFn fn, void* ctx) {
    std::unique_lock<std::mutex> lock(submit_, std::try_to_lock);
    const int threads = this->threads();
    if (!lock.owns_lock() || threads == 1) {  // nested, or another thread's job is running
      fn(ctx, 0, n);
      return;
    }
    if (solo_left_ > 0) {  // a worker was preempted holding a chunk lately: run alone for a while
      --solo_left_;
      lock.unlock();
      fn(ctx, 0, n);
      return;
    }
    if (grain <= 0) grain = (n + 4 * threads - 1) / (4 * threads);
    if ((n + grain - 1) / grain > kMaxChunks) grain = (n + kMaxChunks - 1) / kMaxChunks;
    const int64_t chunks = (n + grain - 1) / grain;
    // Publish: the job's fields first, then the claim word, then the wake-up word.
    job_ = Job{fn, ctx, n, grain};
    done_.store(0, std::memory_order_relaxed);
    const uint32_t gen = gen_.load(std::memory_order_relaxed) + 1;
    claim_.store(pack(gen, static_cast<uint64_t>(chunks), 0), std::memory_order_release);
    gen_.store(gen, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(&gen_);
    work(gen);
    // Chunks another thread claimed may still run: wait for them (spin, then yield the core).
    int spin = 0;
    for (; done_.load(std::memory_order_acquire) != chunks;) {
      if (spin < kSpins) {
        ++spin;
        MOE_PAUSE();
      } else {
        std::this_thread::yield();
      }
    }
    // A long wait here means the thread holding a chunk lost its core (another process runs
    // there): every later job would wait for it the same way, a time slice each. Run the next
    // jobs on the caller alone, twice as many after each such wait in a row, then try again.
    // The doubling is forgotten only after kCleanJobs parallel jobs in a row without such a wait:
    // under a steady load one lucky job (the other thread happened to hold its core) must not
    // start the backoff again from 64.
    if (spin >= kStraggleSpins) {
      solo_run_ = solo_run_ == 0 ? kSoloJobs : std::min(2 * solo_run_, kMaxSoloJobs);
      solo_left_ = solo_run_;
      clean_ = 0;
      ++straggles_;
    } else if (solo_run_ > 0 && ++clean_ >= kCleanJobs) {
      solo_run_ = 0;
    }
  }

  uint64_t straggles() const { return straggles_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    detail::ChunkFn fn = nullptr;
    void* ctx = nullptr;
    int64_t n = 0, grain = 1;
  };

  Pool() = default;

  // Claims and runs chunks of generation `gen` until none is left.
  void work(uint32_t gen) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t chunks = (c >> 16) & 0xFFFF, next = c & 0xFFFF;
      if (static_cast<uint32_t>(c >> 32) != gen || next >= chunks) return;
      if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      // Claimed: the job cannot be replaced before this chunk is counted done.
      const Job j = job_;
      const int64_t b = static_cast<int64_t>(next) * j.grain;
      j.fn(j.ctx, b, b + j.grain < j.n ? b + j.grain : j.n);
      done_.fetch_add(1, std::memory_order_release);
      c = claim_.load(std::memory_order_acquire);
    }
  }

  void worker() {
    uint32_t seen = gen_.load(std::memory_order_acquire);
    while (!stop_.load(std::memory_order_acquire)) {
      uint32_t g = gen_.load(std::memory_order_acquire);
      for (int spin = 0; g == seen && spin < kSpins; ++spin) {
        MOE_PAUSE();
        g = gen_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (gen_.load(std::memory_order_seq_cst) == seen && !stop_.load(std::memory_order_seq_cst))
          futex_wait(&gen_, seen);
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        continue;
      }
      seen = g;
      work(g);
    }
  }

  void stop_workers() {
    stop_.store(true, std::memory_order_seq_cst);
    gen_.fetch_add(1, std::memory_order_seq_cst);  // a sleeper's futex word changes: it wakes
    futex_wake_all(&gen_);
    // A worker between its stop check and its futex wait: wake it until it has gone.
    for (std::thread& t : workers_) {
      while (sleepers_.load() > 0) futex_wake_all(&gen_);
      t.join();
    }
    workers_.clear();
  }

  std::atomic<int> threads_{1};
  std::mutex submit_;
  int solo_left_ = 0, solo_run_ = 0, clean_ = 0;  // guarded by submit_
  std::atomic<uint64_t> straggles_{0};
  Job job_;
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<uint32_t> gen_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

Scheduler initial_scheduler() {
  const char* s = std::getenv("MOE_CPU_THREADS");
  return s != nullptr && std::strcmp(s, "openmp") == 0 ? Scheduler::kOpenMP : Scheduler::kPool;
}

std::atomic<Scheduler> g_scheduler{initial_scheduler()};
std::atomic<int> g_threads{0};  // 0: not set yet (OpenMP's default)

}  // namespace

void set_num_threads(int n) {
  n = n < 1 ? 1 : n;
  g_threads.store(n);
  omp_set_num_threads(n);
  if (scheduler() == Scheduler::kPool) Pool::get().resize(n);
}

int num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  set_num_threads(omp_get_max_threads());
  return g_threads.load();
}

void set_scheduler(Scheduler s) {
  g_scheduler.store(s);
  if (s == Scheduler::kPool) Pool::get().resize(num_threads());
}

Scheduler scheduler() {
  return g_scheduler.load(std::memory_order_relaxed);
}

uint64_t preempted_waits() {
  return Pool::get().straggles();
}

namespace detail {

void run(int64_t n, int64_t grain, ChunkFn fn, void* ctx) {
  if (scheduler() == Scheduler::kPool) {
    Pool::get().run(n, grain, fn, ctx);
    return;
  }
  const int threads = num_threads();
  if (grain <= 0) grain = (n + threads - 1) / threads;
  const int64_t chunks = (n + grain - 1) / grain;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) fn(ctx, c * grain, c * grain + grain < n ? c * grain + grain : n);
}

}  // namespace detail
}  // namespace moe::cpu
