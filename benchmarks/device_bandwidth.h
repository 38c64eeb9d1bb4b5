// Memory bandwidth of the device a benchmark runs on: host DRAM for --device cpu
// (memory_bandwidth.h), device memory (HBM) for --device cuda[:N] (kernels/cuda/bandwidth.cuh),
// in the same record shape so the bound is computed the same way.
#pragma once

#include <cstddef>
#include <string>

#include "benchmarks/memory_bandwidth.h"

namespace moe::bench {

// device: "cpu", "cuda" or "cuda:N" (the CUDA device must already be current: create the backend
// first). threads: CPU threads for the host measurement.
BandwidthResult measure_bandwidth_for(const std::string& device, size_t array_bytes, int threads, int reps);

// "cpu" or "cuda": the prefix of record file names.
std::string device_kind(const std::string& device);

}  // namespace moe::bench
