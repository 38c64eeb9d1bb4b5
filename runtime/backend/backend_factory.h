// Constructs a backend from a device string, for callers that must not include CUDA headers
// (launch/, benchmarks, tests): "cpu", "cuda" (device 0) or "cuda:N".
#pragma once

#include <memory>
#include <string>

#include "runtime/backend/backend.h"

namespace moe {

struct DeviceSpec {
  Device kind = Device::kCpu;
  int index = 0;  // CUDA device ordinal
};

// Parses "cpu", "cuda", "cuda:N"; throws moe::Error naming the string otherwise.
DeviceSpec parse_device(const std::string& device);

// True when this build has the CUDA backend (configure found nvcc).
bool cuda_backend_built();

// threads: CPU threads for the cpu backend (<= 0: all cores). Throws moe::Error with
// "--device cuda: this build has no CUDA" or "--device cuda: no CUDA device found (...)" when
// that is why it cannot be made.
std::unique_ptr<Backend> make_backend(const std::string& device, int threads);

}  // namespace moe
