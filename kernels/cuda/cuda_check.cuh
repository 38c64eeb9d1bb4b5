// The one way CUDA calls are checked: MOE_CUDA_CHECK(call) for every runtime / cuBLAS call and
// MOE_CUDA_LAUNCH(kernel, grid, block, smem, stream, args...) for every kernel launch (the launch
// is followed by cudaGetLastError, so a bad configuration is reported where it happened, never
// silently). Failures throw moe::cuda::CudaError naming the call, the file and line, and the
// CUDA error; kernels/ cannot use runtime's moe::Error, launch/ catches std::exception.
// Host-only header: safe to include from .cpp files of the CUDA backend.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace moe::cuda {

class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& what, cudaError_t code) : std::runtime_error(what), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

// Throws CudaError("<call> failed at file:line: cudaErrorX: text").
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

// True when kernels should be followed by a stream synchronisation (MOE_CUDA_SYNC_LAUNCHES=1 in
// the environment: attributes an asynchronous fault to the launch that caused it). Read once.
bool sync_after_launch();
// Synchronises `stream` when sync_after_launch() and the stream is not being captured.
void debug_sync(cudaStream_t stream, const char* kernel, const char* file, int line);

}  // namespace moe::cuda

#define MOE_CUDA_CHECK(call)                                                                                   \
  do {                                                                                                         \
    const cudaError_t moe_cuda_err_ = (call);                                                                  \
    if (moe_cuda_err_ != cudaSuccess) ::moe::cuda::throw_cuda_error(moe_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

// Only in .cu files (needs the <<< >>> syntax). `kernel` may be a template-id in parentheses.
#define MOE_CUDA_LAUNCH(kernel, grid, block, smem, stream, ...)                                                  \
  do {                                                                                                           \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__);                                                  \
    const cudaError_t moe_cuda_err_ = cudaGetLastError();                                                        \
    if (moe_cuda_err_ != cudaSuccess) ::moe::cuda::throw_cuda_error(moe_cuda_err_, #kernel, __FILE__, __LINE__); \
    if (::moe::cuda::sync_after_launch()) ::moe::cuda::debug_sync((stream), #kernel, __FILE__, __LINE__);        \
  } while (0)
