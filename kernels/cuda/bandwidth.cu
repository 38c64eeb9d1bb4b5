#include "kernels/cuda/bandwidth.cuh"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/device.cuh"

namespace moe::cuda {
namespace {

__global__ void read_kernel(const uint4* __restrict__ a, size_t n, unsigned* __restrict__ sink) {
  unsigned acc = 0;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(a + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;  // practically never: keeps the loads alive
}

}  // namespace

DeviceBandwidth measure_device_bandwidth(size_t bytes, int reps) {
  DeviceBandwidth r;
  bytes = bytes / 16 * 16;
  r.array_bytes = bytes;
  DevicePool pool(bytes);
  void* a = pool.allocate(bytes);
  void* b = pool.allocate(bytes);
  auto* sink = static_cast<unsigned*>(pool.allocate(16));
  Stream stream;
  MOE_CUDA_CHECK(cudaMemsetAsync(a, 1, bytes, stream.get()));
  int dev = 0, sms = 0;
  MOE_CUDA_CHECK(cudaGetDevice(&dev));
  MOE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  Event start(true), stop(true);
  for (int i = -1; i < reps; ++i) {
    start.record(stream.get());
    MOE_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream.get()));
    stop.record(stream.get());
    stop.synchronize();
    if (i >= 0) r.copy_gbs.push_back(2.0 * static_cast<double>(bytes) / (Event::elapsed_ms(start, stop) * 1e6));
    start.record(stream.get());
    MOE_CUDA_LAUNCH(read_kernel, static_cast<unsigned>(sms * 8), 512, 0, stream.get(), static_cast<const uint4*>(a),
                    bytes / 16, sink);
    stop.record(stream.get());
    stop.synchronize();
    if (i >= 0) r.read_gbs.push_back(static_cast<double>(bytes) / (Event::elapsed_ms(start, stop) * 1e6));
  }
  return r;
}

}  // namespace moe::cuda
