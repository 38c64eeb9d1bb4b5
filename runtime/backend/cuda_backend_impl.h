// CudaBackend's private state (includes CUDA headers; only the CUDA backend's .cpp files
// include it). The contract is in cuda_backend.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/gemv_ggml.cuh"
#include "kernels/cuda/operand.cuh"
#include "runtime/backend/cuda_backend.h"
#include "runtime/backend/cuda_graphs.h"

namespace moe {

struct CudaBackend::Impl {
  explicit Impl(const CudaBackendOptions& o);

  CudaBackendOptions options;
  cuda::DeviceProps props;
  cuda::Stream stream;
  cuda::DevicePool pool;
  cuda::DeviceScratch work;    // op intermediates (SwiGLU hidden rows, group sums, attention slices)
  cuda::DeviceScratch upload;  // weight staging at load (stored layout before the repack)
  // Host arguments the kernels read in place (row indices, scales, token ids) and routing results
  // the kernels write: mapped pinned memory, handed out by a bump pointer that restarts after each
  // host wait (everything queued before it has run by then).
  cuda::PinnedBuffer ring;
  size_t ring_used = 0;
  cuda::PinnedBuffer readback;  // copy_to_host staging
  PieceGraphs graphs;
  size_t piece = 0;          // index of the current piece within the step
  bool piece_eager = false;  // the current piece had an op with more than one token row
  CudaBackendStats stats;

  cudaStream_t s() const { return stream.get(); }

  // Called by every op before it queues work, with its token rows: starts a graph capture at the
  // first op of a piece when graphs are on and it has one row, ends it (and finishes the piece
  // eagerly) when a later op has more.
  void begin_op(int64_t rows);
  // Ends and launches a capture in progress (the piece so far runs as a graph).
  void flush_capture();
  // A host wait: flush, synchronise the stream, restart the ring; `end_of_step` restarts the
  // piece count (the step's logits were read).
  void host_wait(bool end_of_step);
  // `bytes` of the ring (16-byte aligned); may force a host wait when it is full.
  void* ring_alloc(size_t bytes);
  template <class T>
  T* ring_copy(const T* src, size_t n) {
    auto* p = static_cast<T*>(ring_alloc(n * sizeof(T)));
    std::memcpy(p, src, n * sizeof(T));
    return p;
  }
  // At least `floats` of op scratch; flushes a capture first when it must grow (cudaFree
  // synchronises the device, which a capture cannot contain).
  float* work_floats(int64_t floats);
};

// Tensor -> kernel operand descriptions (shape checks are the caller's). weight_operand refuses
// ggml-typed weights (their kernels take a GgmlWeight: is_ggml_weight, ggml_operand).
cuda::WeightOperand weight_operand(const Tensor& w, const char* op, const char* what);
cuda::BiasOperand bias_operand(const Tensor& b);
cuda::Elem elem_of(DType t, const char* op, const char* what);
// The kernels' spelling of a quantized format.
cuda::QFormat qformat_of(QuantType t);
// ggml-typed weights: kept in their stored layout (no repack), run by kernels/cuda/gemv_ggml.cuh.
inline bool is_ggml_weight(const Tensor& w) {
  return w.quant && is_ggml(w.quant->type);
}
cuda::GgmlType ggml_type_of(QuantType t);  // fails for a type that is not ggml's
cuda::GgmlWeight ggml_operand(const Tensor& w, const char* op, const char* what);

}  // namespace moe
