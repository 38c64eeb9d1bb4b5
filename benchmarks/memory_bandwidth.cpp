#include "benchmarks/memory_bandwidth.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "runtime/core/error.h"

namespace moe::bench {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint64_t[], FreeDeleter>;

Buffer allocate(size_t words) {
  void* p = std::aligned_alloc(4096, words * sizeof(uint64_t));
  MOE_CHECK(p != nullptr, "memory bandwidth: cannot allocate ", words * sizeof(uint64_t), " bytes");
  return Buffer(static_cast<uint64_t*>(p));
}

// [begin, end) of thread t's share of n words, split in equal contiguous blocks.
void share(size_t n, int threads, int t, size_t& begin, size_t& end) {
  const size_t per = n / static_cast<size_t>(threads);
  begin = per * static_cast<size_t>(t);
  end = t == threads - 1 ? n : begin + per;
}

// Independent partial sums: integer adds are associative, so GCC vectorises this without
// -ffast-math. 8 lanes of 64 bits = two or four vector registers.
constexpr size_t kLanes = 8;

uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t acc[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; ++j) acc[j] += p[i + j];
  for (; i < n; ++i) acc[0] += p[i];
  uint64_t s = 0;
  for (uint64_t a : acc) s += a;
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

double BandwidthResult::best_copy_gbs() const {
  return copy_gbs.empty() ? 0 : *std::max_element(copy_gbs.begin(), copy_gbs.end());
}
double BandwidthResult::best_read_gbs() const {
  return read_gbs.empty() ? 0 : *std::max_element(read_gbs.begin(), read_gbs.end());
}

BandwidthResult measure_memory_bandwidth(size_t array_bytes, int threads, int reps) {
  MOE_CHECK(threads > 0, "memory bandwidth: threads must be positive");
  MOE_CHECK(reps > 0, "memory bandwidth: repetitions must be positive");
  const size_t n = array_bytes / sizeof(uint64_t);
  MOE_CHECK(n >= static_cast<size_t>(threads) * kLanes, "memory bandwidth: arrays of ", array_bytes,
            " bytes are too small");
  BandwidthResult r;
  r.array_bytes = n * sizeof(uint64_t);
  r.threads = threads;
  Buffer a = allocate(n), b = allocate(n);
  uint64_t* pa = a.get();
  uint64_t* pb = b.get();

  // First touch by the thread that will use each share (page placement, and no page faults
  // inside the timed passes).
#pragma omp parallel num_threads(threads)
  {
    size_t begin = 0, end = 0;
    share(n, threads, omp_get_thread_num(), begin, end);
    for (size_t i = begin; i < end; ++i) {
      pa[i] = i;
      pb[i] = 0;
    }
  }

  volatile uint64_t sink = 0;
  const double bytes = static_cast<double>(r.array_bytes);
  for (int rep = 0; rep < reps; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      size_t begin = 0, end = 0;
      share(n, threads, omp_get_thread_num(), begin, end);
      std::memcpy(pb + begin, pa + begin, (end - begin) * sizeof(uint64_t));
    }
    r.copy_gbs.push_back(2.0 * bytes / seconds_since(t0) / 1e9);

    uint64_t total = 0;
    t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      size_t begin = 0, end = 0;
      share(n, threads, omp_get_thread_num(), begin, end);
      total += sum_words(pb + begin, end - begin);
    }
    r.read_gbs.push_back(bytes / seconds_since(t0) / 1e9);
    sink = sink + total;
  }
  // The copy must have happened: sum of 0..n-1.
  const uint64_t expect = static_cast<uint64_t>(n) * (static_cast<uint64_t>(n) - 1) / 2;
  MOE_CHECK(sink == expect * static_cast<uint64_t>(reps), "memory bandwidth: copy check failed");
  return r;
}

}  // namespace moe::bench
