// Quick bandwidth measurements for the planner (`moe plan`) and the offload benchmark: host DRAM
// read (threads summing a buffer far larger than the caches) and a file read with O_DIRECT
// through the expert reader (what the NVMe tier delivers). Seconds, not a benchmark suite.
#pragma once

#include <cstdint>
#include <filesystem>

namespace moe {

// Best of `reps` passes over `bytes` with `threads` threads; bytes per second.
double measure_dram_read_bandwidth(uint64_t bytes = uint64_t{512} << 20, int threads = 0, int reps = 3);

// Reads up to `max_bytes` of `path` in 4 MiB requests with 16 in flight (O_DIRECT when allowed);
// bytes per second. `direct` receives whether O_DIRECT was used. Throws moe::Error for an
// unreadable or empty file.
double measure_file_read_bandwidth(const std::filesystem::path& path, uint64_t max_bytes, bool* direct = nullptr);

}  // namespace moe
