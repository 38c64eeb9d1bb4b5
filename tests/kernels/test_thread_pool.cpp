// The kernels' thread pool (kernels/common/thread_pool.h): every index of [0, n) is run exactly once,
// by ranges of at most the grain, whatever the thread count, the scheduler (pool or OpenMP), the
// grain, nesting, or a second thread submitting at the same time; and the CPU kernels give
// bit-identical results under either scheduler and any thread count.
#include "kernels/common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/qlinear.h"
#include "kernels/quant/quantize.h"

namespace moe::cpu {
namespace {

// Restores the thread count and scheduler a test changed.
class PoolState {
 public:
  PoolState() : threads_(num_threads()), sched_(scheduler()) {}
  ~PoolState() {
    set_scheduler(sched_);
    set_num_threads(threads_);
  }

 private:
  int threads_;
  Scheduler sched_;
};

void expect_each_once(int64_t n, int64_t grain, bool parallel = true) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int64_t> too_long{0};
  // Else one call body(0, n), as documented; the grain is raised above 65535 ranges.
  const bool split = parallel && num_threads() > 1 && (grain == 0 || n / grain < 65535);
  parallel_for(
      n, parallel,
      [&](int64_t b, int64_t e) {
        // One call over everything: run inline (also after a wait on a preempted thread).
        if (split && grain > 0 && e - b > grain && !(b == 0 && e == n)) too_long.fetch_add(1);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      },
      grain);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << n;
  EXPECT_EQ(too_long.load(), 0) << "a range longer than the grain " << grain;
}

TEST(ThreadPool, EveryIndexOnceForAnyThreadsGrainAndScheduler) {
  PoolState keep;
  for (Scheduler s : {Scheduler::kPool, Scheduler::kOpenMP})
    for (int threads : {1, 2, 3, 5}) {
      set_scheduler(s);
      set_num_threads(threads);
      EXPECT_EQ(num_threads(), threads);
      for (int64_t n : {1, 2, 7, 64, 1000, 100003})
        for (int64_t grain : {0, 1, 3, 64}) {
          SCOPED_TRACE(testing::Message() << "scheduler " << static_cast<int>(s) << " threads " << threads << " n " << n
                                          << " grain " << grain);
          expect_each_once(n, grain);
        }
      expect_each_once(50, 0, /*parallel=*/false);
    }
}

// More chunks than the claim word counts (2^16 - 1): the grain is raised, every index still once.
TEST(ThreadPool, ManyChunks) {
  PoolState keep;
  set_scheduler(Scheduler::kPool);
  set_num_threads(2);
  std::vector<std::atomic<int>> hits(200000);
  parallel_for(
      200000, true,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      },
      1);
  for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
}

// A parallel_for inside a chunk runs inline on that thread, and completes.
TEST(ThreadPool, NestedRunsInline) {
  PoolState keep;
  set_scheduler(Scheduler::kPool);
  set_num_threads(3);
  std::vector<std::atomic<int>> hits(64 * 64);
  parallel_for(
      64, true,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          parallel_for(64, true, [&](int64_t b2, int64_t e2) {
            for (int64_t j = b2; j < e2; ++j) hits[static_cast<size_t>(i * 64 + j)].fetch_add(1);
          });
      },
      1);
  for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
}

// Two threads submitting at once: one gets the pool, the other runs inline; both complete.
TEST(ThreadPool, ConcurrentCallers) {
  PoolState keep;
  set_scheduler(Scheduler::kPool);
  set_num_threads(2);
  constexpr int kRounds = 300;
  std::vector<int64_t> sums(2, 0);
  auto caller = [&](int who) {
    for (int r = 0; r < kRounds; ++r) {
      std::vector<int64_t> part(1000, 0);
      parallel_for(1000, true, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) part[static_cast<size_t>(i)] = i + r;
      });
      for (int64_t v : part) sums[static_cast<size_t>(who)] += v;
    }
  };
  std::thread a(caller, 0), b(caller, 1);
  a.join();
  b.join();
  // sum over r of sum_i (i + r) = kRounds * 499500 + 1000 * kRounds * (kRounds - 1) / 2
  const int64_t want = int64_t{kRounds} * 499500 + int64_t{1000} * kRounds * (kRounds - 1) / 2;
  EXPECT_EQ(sums[0], want);
  EXPECT_EQ(sums[1], want);
}

// The quantized projection gives the same bits whoever runs which rows.
TEST(ThreadPool, QlinearBitIdenticalAcrossSchedulersAndThreads) {
  PoolState keep;
  const int64_t T = 3, K = 512, N = 1000;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<float> w(static_cast<size_t>(N * K)), x(static_cast<size_t>(T * K));
  for (float& v : w) v = nd(rng);
  for (float& v : x) v = nd(rng);
  const QuantFormat f{QuantType::kQ4, 64};
  std::vector<uint8_t> q(quant_row_bytes(f, K) * static_cast<size_t>(N));
  quantize_rows(w.data(), N, K, f, QuantizeOptions{}, q.data());
  std::vector<float> want;
  for (Scheduler s : {Scheduler::kOpenMP, Scheduler::kPool})
    for (int threads : {1, 2, 4}) {
      set_scheduler(s);
      set_num_threads(threads);
      for (int64_t t : {int64_t{1}, T}) {
        std::vector<float> y(static_cast<size_t>(t * N));
        qlinear(x.data(), t, K, QWeight{q.data(), f, QuantLayout::kRows}, N, WeightRef{}, y.data());
        if (t == 1) continue;
        if (want.empty()) want = y;
        EXPECT_EQ(std::memcmp(y.data(), want.data(), y.size() * sizeof(float)), 0)
            << "scheduler " << static_cast<int>(s) << " threads " << threads;
      }
    }
}

}  // namespace
}  // namespace moe::cpu
