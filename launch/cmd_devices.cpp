// moe devices: the compute devices this build can use.
#include <omp.h>

#include <cstdio>

#include "launch/commands.h"
#if MOE_HAVE_CUDA
#include "kernels/cuda/device_query.cuh"
#endif

namespace moe::cli {

Action add_devices_command(CLI::App& app) {
  app.add_subcommand("devices", "List the compute devices this build can use (CPU threads, CUDA GPUs).");
  return [] {
    std::printf("cpu      %d OpenMP threads\n", omp_get_max_threads());
#if MOE_HAVE_CUDA
    const cuda::DeviceQuery q = cuda::query_devices();
    if (q.devices.empty()) {
      std::printf("cuda     no usable device (runtime %d, driver %d): %s\n", q.runtime_version, q.driver_version,
                  q.error.empty() ? "none found" : q.error.c_str());
    }
    for (const cuda::DeviceInfo& d : q.devices)
      std::printf("cuda:%d   %s, sm_%d%d, %d SMs, %.1f GiB (%.1f GiB free)\n", d.index, d.name.c_str(), d.compute_major,
                  d.compute_minor, d.multiprocessors, static_cast<double>(d.total_memory) / (1 << 30),
                  static_cast<double>(d.free_memory) / (1 << 30));
#else
    std::printf("cuda     not built (configure found no nvcc)\n");
#endif
    return 0;
  };
}

}  // namespace moe::cli
