// The CPU kernels' threads: one pool whose join waits only for work that was taken.
//
// OpenMP's fork/join makes every thread of the team reach the closing barrier, so when another
// process takes a core, each parallel region waits for a descheduled thread to be scheduled
// again (a time slice, milliseconds) although the threads that run could have done its share: a
// decode step opens ~150 regions, and q4 decode fell from ~380 to ~12 tokens/s beside a build.
// Here a job is cut into chunks that the caller and the workers claim one at a time; the caller
// returns once every chunk is done, whoever ran it. A worker that was not running claims
// nothing and delays nothing. A worker preempted while it holds a chunk still delays the
// caller; the pool notices (preempted_waits) and runs the next jobs on the caller alone, so
// under contention the step runs at about one thread's speed instead of collapsing. Idle workers spin briefly (the next
// region of a decode step comes within microseconds), then sleep on a futex.
//
// Which thread runs a chunk never changes what it computes: callers make each output depend on
// its own index only, so results do not depend on the thread count or on who ran what.
//
// One job at a time: a parallel_for from inside a chunk, or from a second thread while the pool
// is busy, runs inline on its caller (serially), never deadlocks.
//
// Nothing on the hot path may open an OpenMP region either: after one, OpenMP's own workers spin
// for a while, taking the cores from the pool's (a per-token one-row dequantization that did
// made decode 3x slower). Every kernel in kernels/ uses this pool; OpenMP is left to benchmarks.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace moe::cpu {

// Threads the kernels use, the caller included (>= 1). Set once by the backend (CpuBackend);
// changing it while a job runs is not allowed. Default: OpenMP's default thread count.
void set_num_threads(int n);
int num_threads();

// How parallel_for runs its chunks: kPool (the pool above) or kOpenMP (an OpenMP parallel for,
// static schedule: the previous behaviour, kept to measure against). MOE_CPU_THREADS=openmp in
// the environment selects kOpenMP at start-up.
enum class Scheduler : uint8_t { kPool, kOpenMP };
void set_scheduler(Scheduler s);
Scheduler scheduler();

// How often a job waited long (~100 us) for a chunk another thread held, i.e. that thread lost
// its core to another process. After each, the next jobs (64, doubling while it recurs, up to
// 8192; the doubling starts over only after 256 parallel jobs in a row without such a wait) run
// on the caller alone: under contention decode runs on one core instead of waiting a time slice
// per parallel region.
uint64_t preempted_waits();

namespace detail {
using ChunkFn = void (*)(void* ctx, int64_t begin, int64_t end);
// Runs fn(ctx, b, e) over [0, n) cut into chunks of `grain` items (the last one shorter).
void run(int64_t n, int64_t grain, ChunkFn fn, void* ctx);
}  // namespace detail

// Calls body(begin, end) for consecutive ranges covering [0, n), each at most `grain` items (0:
// chosen from n and the thread count; raised so that there are at most 65535 ranges), in
// parallel when `parallel` and there is more than one thread, else inline in one call
// body(0, n) (so too when nested, when another thread's job runs, and for the jobs after a wait
// on a preempted thread). Returns when all are done. body must not throw.
template <class F>
void parallel_for(int64_t n, bool parallel, F&& body, int64_t grain = 0) {
  if (n <= 0) return;
  if (!parallel || num_threads() == 1) {
    body(int64_t{0}, n);
    return;
  }
  using Body = std::remove_reference_t<F>;
  detail::run(
      n, grain, [](void* ctx, int64_t b, int64_t e) { (*static_cast<Body*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(&body)));
}

}  // namespace moe::cpu
