#include "runtime/backend/backend_factory.h"

#include <charconv>

#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#if MOE_HAVE_CUDA
#include "runtime/backend/cuda_backend.h"
#endif

namespace moe {

DeviceSpec parse_device(const std::string& device) {
  if (device == "cpu") return {Device::kCpu, 0};
  if (device == "cuda") return {Device::kCuda, 0};
  if (device.starts_with("cuda:")) {
    const char* b = device.data() + 5;
    const char* e = device.data() + device.size();
    int index = -1;
    const auto [p, ec] = std::from_chars(b, e, index);
    if (ec == std::errc() && p == e && b != e && index >= 0) return {Device::kCuda, index};
  }
  fail("--device ", device, ": expected cpu, cuda or cuda:N");
}

bool cuda_backend_built() {
#if MOE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& device, int threads) {
  const DeviceSpec spec = parse_device(device);
  switch (spec.kind) {
    case Device::kCpu: return std::make_unique<CpuBackend>(threads);
    case Device::kCuda: {
#if MOE_HAVE_CUDA
      const int count = cuda_device_count();
      if (count == 0) fail("--device ", device, ": no CUDA device found (moe devices lists what the driver sees)");
      if (spec.index >= count)
        fail("--device ", device, ": no CUDA device ", spec.index, " (", count, " device", count == 1 ? "" : "s",
             " found)");
      CudaBackendOptions o;
      o.device = spec.index;
      return std::make_unique<CudaBackend>(o);
#else
      fail("--device ", device, ": this build has no CUDA (configure found no nvcc); use --device cpu");
#endif
    }
  }
  fail("--device ", device, ": unknown device kind");
}

}  // namespace moe
