// Device memory bandwidth, measured the STREAM way on the GPU, for benchmarks to set their
// figures beside: copy (cudaMemcpy device to device, counted as read + write bytes) and read
// (a kernel summing the array with 128-bit loads). Plain C++ interface (no CUDA types), so
// benchmark programs include it without CUDA headers.
#pragma once

#include <cstddef>
#include <vector>

namespace moe::cuda {

struct DeviceBandwidth {
  size_t array_bytes = 0;
  std::vector<double> copy_gbs;  // every repetition, GB/s (1e9 bytes)
  std::vector<double> read_gbs;
};

// On the current device: two arrays of `bytes`, `reps` alternating copy and read passes (after one
// untimed pass of each), timed with events. Throws CudaError on failure.
DeviceBandwidth measure_device_bandwidth(size_t bytes, int reps);

}  // namespace moe::cuda
