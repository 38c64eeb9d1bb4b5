// Enumerates CUDA devices. CUDA types stay in this file's .cu; callers see plain structs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  uint64_t total_memory = 0;  // bytes
  uint64_t free_memory = 0;   // bytes, at the time of the query
};

struct DeviceQuery {
  std::vector<DeviceInfo> devices;
  int driver_version = 0;  // 0 when no driver is loaded
  int runtime_version = 0;
  std::string error;  // why no device is usable, empty when devices were listed
};

// Never throws: a machine without a driver or a GPU gets an empty list and the CUDA error text.
DeviceQuery query_devices();

}  // namespace moe::cuda
