// Capture and replay of the single-token pieces of a decode step as CUDA graphs (private to the
// CUDA backend; includes CUDA headers). A piece is the run of ops between two host waits; piece
// i of a step is captured into a fresh graph and applied to the executable graph kept for slot
// i with cudaGraphExecUpdate (same kernels, new arguments), which is re-instantiated only when
// the topology changed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace moe {

struct CudaBackendStats;

class PieceGraphs {
 public:
  explicit PieceGraphs(cudaStream_t stream) : stream_(stream) {}
  ~PieceGraphs();
  PieceGraphs(const PieceGraphs&) = delete;
  PieceGraphs& operator=(const PieceGraphs&) = delete;

  bool capturing() const { return capturing_; }
  // Starts capturing the stream's work (relaxed mode: allocation calls elsewhere stay legal).
  void begin();
  // Ends the capture and launches the piece as slot `slot`'s graph.
  void end_and_launch(size_t slot, CudaBackendStats& stats);

 private:
  cudaStream_t stream_;
  bool capturing_ = false;
  std::vector<cudaGraphExec_t> execs_;
};

}  // namespace moe
