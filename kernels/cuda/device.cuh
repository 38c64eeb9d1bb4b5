// The CUDA device layer: device selection and properties, and RAII owners for streams, events,
// device memory (a pool: nothing is cudaMalloc'ed on the hot path) and pinned host buffers.
// Each foreign handle has exactly one owner; owners are movable, not copyable, and release their
// handle in the destructor (errors there are ignored: a destructor must not throw).
// Host-only header (no device code): the CUDA backend's .cpp files include it.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moe::cuda {

struct DeviceProps {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;   // SMs
  int max_threads_per_sm = 0;
  size_t shared_per_block_optin = 0;  // bytes a kernel may opt in to
  size_t l2_bytes = 0;
  uint64_t total_memory = 0;
  int memory_bus_bits = 0;
  int memory_clock_khz = 0;
  // Theoretical DRAM bandwidth from the bus width and memory clock (GB/s, 1e9 bytes); 0 when the
  // driver does not report the clock.
  double peak_bandwidth_gbs() const;
};

// Number of CUDA devices; 0 (never an exception) when there is no driver or no device.
int device_count();
// Makes `index` current for the calling thread and returns its properties; throws CudaError for
// an index out of range.
DeviceProps select_device(int index);

class Stream {
 public:
  Stream();  // a non-blocking stream on the current device
  ~Stream();
  Stream(Stream&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void synchronize() const;

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(Event&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  Event& operator=(Event&& o) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }
  void record(cudaStream_t s) const;
  void synchronize() const;
  // Milliseconds between two recorded timing events.
  static float elapsed_ms(const Event& start, const Event& stop);

 private:
  cudaEvent_t e_ = nullptr;
};

// Device memory handed out from large chunks: allocation is a pointer bump (256-byte aligned),
// memory is returned all at once when the pool dies (activations, weights and KV caches live as
// long as the backend). Requests larger than the chunk size get a chunk of their own.
class DevicePool {
 public:
  explicit DevicePool(size_t chunk_bytes = size_t{256} << 20) : chunk_bytes_(chunk_bytes) {}
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  void* allocate(size_t bytes);
  size_t bytes_reserved() const { return reserved_; }  // cudaMalloc'ed
  size_t bytes_used() const { return used_; }          // handed out

 private:
  size_t chunk_bytes_;
  std::vector<void*> chunks_;
  char* cursor_ = nullptr;
  size_t left_ = 0;
  size_t reserved_ = 0, used_ = 0;
};

// A device buffer that grows (never shrinks) on request: op scratch space. grow() may cudaMalloc,
// so callers size it before the hot path (or before a graph capture).
class DeviceScratch {
 public:
  DeviceScratch() = default;
  ~DeviceScratch();
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  // At least `bytes`; the old contents are not kept. Returns true when it had to reallocate.
  bool reserve(size_t bytes);
  void* get() const { return p_; }
  size_t size() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory, mapped into the device address space (kernels may read it directly,
// and copies from it are truly asynchronous).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void* get() const { return p_; }
  size_t size() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace moe::cuda
