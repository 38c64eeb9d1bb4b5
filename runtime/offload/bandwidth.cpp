#include "runtime/offload/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/offload/expert_reader.h"
#include "runtime/offload/slot_pool.h"

namespace moe {

double measure_dram_read_bandwidth(uint64_t bytes, int threads, int reps) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const uint64_t n = bytes / sizeof(uint64_t);
  std::vector<uint64_t> a(n);
  const uint64_t share = n / static_cast<uint64_t>(threads);
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  auto pass = [&](bool init) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const uint64_t begin = static_cast<uint64_t>(t) * share, end = t + 1 == threads ? n : begin + share;
        if (init) {
          for (uint64_t i = begin; i < end; ++i) a[i] = i;
          return;
        }
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        uint64_t i = begin;
        for (; i + 4 <= end; i += 4) {
          s0 += a[i];
          s1 += a[i + 1];
          s2 += a[i + 2];
          s3 += a[i + 3];
        }
        for (; i < end; ++i) s0 += a[i];
        sums[static_cast<size_t>(t)] = s0 + s1 + s2 + s3;
      });
    for (std::thread& th : pool) th.join();
  };
  pass(true);  // first touch by the threads that read
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pass(false);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s);
  }
  return best;
}

double measure_file_read_bandwidth(const std::filesystem::path& path, uint64_t max_bytes, bool* direct) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  MOE_CHECK(!ec, path.string(), ": cannot measure read bandwidth: ", ec.message());
  const uint64_t total = std::min(size, max_bytes) / 4096 * 4096;
  MOE_CHECK(total > 0, path.string(), ": too small to measure read bandwidth (", size, " bytes)");
  std::unique_ptr<ExpertReader> reader = open_expert_reader(path, ReaderKind::kAuto);
  if (direct) *direct = reader->direct();
  constexpr uint64_t kRequest = uint64_t{4} << 20;
  constexpr int kInFlight = 16;
  SlotPool pool(kInFlight, kRequest);
  std::vector<ReadCompletion> done(kInFlight);
  std::vector<bool> busy(kInFlight, false);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t offset = 0;
  int next = 0;
  while (offset < total) {
    if (busy[static_cast<size_t>(next)]) done[static_cast<size_t>(next)].wait();
    const uint64_t n = std::min(kRequest, total - offset);
    reader->submit({.key = {-1, -1},
                    .offset = offset,
                    .bytes = n,
                    .dst = pool.data(next),
                    .done = &done[static_cast<size_t>(next)]});
    busy[static_cast<size_t>(next)] = true;
    offset += n;
    next = (next + 1) % kInFlight;
  }
  for (int i = 0; i < kInFlight; ++i)
    if (busy[static_cast<size_t>(i)]) done[static_cast<size_t>(i)].wait();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(total) / s;
}

}  // namespace moe
