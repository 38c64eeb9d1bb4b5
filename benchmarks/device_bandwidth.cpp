#include "benchmarks/device_bandwidth.h"

#include "runtime/backend/backend_factory.h"
#include "runtime/core/error.h"
#if MOE_HAVE_CUDA
#include "kernels/cuda/bandwidth.cuh"
#endif

namespace moe::bench {

std::string device_kind(const std::string& device) {
  return parse_device(device).kind == Device::kCuda ? "cuda" : "cpu";
}

BandwidthResult measure_bandwidth_for(const std::string& device, size_t array_bytes, int threads, int reps) {
  if (parse_device(device).kind == Device::kCpu) return measure_memory_bandwidth(array_bytes, threads, reps);
#if MOE_HAVE_CUDA
  const cuda::DeviceBandwidth d = cuda::measure_device_bandwidth(array_bytes, reps);
  BandwidthResult r;
  r.array_bytes = d.array_bytes;
  r.threads = 0;
  r.copy_gbs = d.copy_gbs;
  r.read_gbs = d.read_gbs;
  return r;
#else
  fail("--device ", device, ": this build has no CUDA");
#endif
}

}  // namespace moe::bench
