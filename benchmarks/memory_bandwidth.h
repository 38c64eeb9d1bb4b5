// This machine's memory bandwidth, measured the STREAM way: arrays far larger than the last-level
// cache, every thread on its own contiguous share (first-touched by that thread), the best of
// several repetitions. Two kernels:
//   copy: b[i] = a[i]   counted as read + write bytes (2 x array bytes), as STREAM counts Copy;
//   read: sum of a[i]   read-only, the access pattern of a batch-1 decode over its weights.
#pragma once

#include <cstddef>
#include <vector>

namespace moe::bench {

struct BandwidthResult {
  size_t array_bytes = 0;  // bytes of each of the two arrays
  int threads = 0;
  std::vector<double> copy_gbs;  // every repetition, GB/s (1e9 bytes)
  std::vector<double> read_gbs;
  double best_copy_gbs() const;
  double best_read_gbs() const;
};

// Allocates two arrays of `array_bytes` each, runs `reps` alternating copy and read passes with
// `threads` OpenMP threads, frees them. Throws moe::Error when the memory cannot be allocated.
BandwidthResult measure_memory_bandwidth(size_t array_bytes, int threads, int reps);

}  // namespace moe::bench
