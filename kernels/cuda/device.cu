#include "kernels/cuda/device.cuh"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.cuh"

namespace moe::cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  std::string what = std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                     cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  throw CudaError(what, err);
}

bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("MOE_CUDA_SYNC_LAUNCHES");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

void debug_sync(cudaStream_t stream, const char* kernel, const char* file, int line) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  MOE_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  if (status != cudaStreamCaptureStatusNone) return;
  const cudaError_t err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) throw_cuda_error(err, kernel, file, line);
}

double DeviceProps::peak_bandwidth_gbs() const {
  // DDR: two transfers per clock.
  return 2.0 * static_cast<double>(memory_clock_khz) * 1e3 * (memory_bus_bits / 8.0) / 1e9;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it so later calls start clean
    return 0;
  }
  return n;
}

DeviceProps select_device(int index) {
  MOE_CUDA_CHECK(cudaSetDevice(index));
  cudaDeviceProp p{};
  MOE_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  DeviceProps d;
  d.index = index;
  d.name = p.name;
  d.major = p.major;
  d.minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  d.max_threads_per_sm = p.maxThreadsPerMultiProcessor;
  d.shared_per_block_optin = p.sharedMemPerBlockOptin;
  d.l2_bytes = static_cast<size_t>(p.l2CacheSize);
  d.total_memory = p.totalGlobalMem;
  d.memory_bus_bits = p.memoryBusWidth;
  int clock = 0;  // cudaDeviceProp::memoryClockRate is gone in CUDA 13: ask the attribute
  if (cudaDeviceGetAttribute(&clock, cudaDevAttrMemoryClockRate, index) == cudaSuccess)
    d.memory_clock_khz = clock;
  else
    cudaGetLastError();
  return d;
}

Stream::Stream() {
  MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
}
Stream::~Stream() {
  if (s_ != nullptr) cudaStreamDestroy(s_);
}
Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    if (s_ != nullptr) cudaStreamDestroy(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}
void Stream::synchronize() const {
  MOE_CUDA_CHECK(cudaStreamSynchronize(s_));
}

Event::Event(bool timing) {
  MOE_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
}
Event::~Event() {
  if (e_ != nullptr) cudaEventDestroy(e_);
}
Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    if (e_ != nullptr) cudaEventDestroy(e_);
    e_ = o.e_;
    o.e_ = nullptr;
  }
  return *this;
}
void Event::record(cudaStream_t s) const {
  MOE_CUDA_CHECK(cudaEventRecord(e_, s));
}
void Event::synchronize() const {
  MOE_CUDA_CHECK(cudaEventSynchronize(e_));
}
float Event::elapsed_ms(const Event& start, const Event& stop) {
  float ms = 0;
  MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e_, stop.e_));
  return ms;
}

DevicePool::~DevicePool() {
  for (void* c : chunks_) cudaFree(c);
}

void* DevicePool::allocate(size_t bytes) {
  constexpr size_t kAlign = 256;
  const size_t need = (bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign);
  if (need > chunk_bytes_ / 4) {  // big: its own allocation, the current chunk stays open
    void* p = nullptr;
    MOE_CUDA_CHECK(cudaMalloc(&p, need));
    chunks_.push_back(p);
    reserved_ += need;
    used_ += need;
    return p;
  }
  if (need > left_) {
    void* p = nullptr;
    MOE_CUDA_CHECK(cudaMalloc(&p, chunk_bytes_));
    chunks_.push_back(p);
    reserved_ += chunk_bytes_;
    cursor_ = static_cast<char*>(p);
    left_ = chunk_bytes_;
  }
  void* p = cursor_;
  cursor_ += need;
  left_ -= need;
  used_ += need;
  return p;
}

DeviceScratch::~DeviceScratch() {
  if (p_ != nullptr) cudaFree(p_);
}

bool DeviceScratch::reserve(size_t bytes) {
  if (bytes <= bytes_) return false;
  const size_t grown = bytes_ * 3 / 2 > bytes ? bytes_ * 3 / 2 : bytes;
  if (p_ != nullptr) {
    MOE_CUDA_CHECK(cudaFree(p_));  // cudaFree synchronises the device: outstanding work is done
    p_ = nullptr;
    bytes_ = 0;
  }
  MOE_CUDA_CHECK(cudaMalloc(&p_, grown));
  bytes_ = grown;
  return true;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  MOE_CUDA_CHECK(cudaHostAlloc(&p_, bytes == 0 ? 1 : bytes, cudaHostAllocMapped | cudaHostAllocPortable));
}
PinnedBuffer::~PinnedBuffer() {
  if (p_ != nullptr) cudaFreeHost(p_);
}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (p_ != nullptr) cudaFreeHost(p_);
    p_ = o.p_;
    bytes_ = o.bytes_;
    o.p_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

}  // namespace moe::cuda
