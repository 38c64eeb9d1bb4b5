#include "runtime/backend/cuda_graphs.h"

#include "kernels/cuda/cuda_check.cuh"
#include "runtime/backend/cuda_backend.h"

namespace moe {

PieceGraphs::~PieceGraphs() {
  if (capturing_) {
    cudaGraph_t g = nullptr;
    if (cudaStreamEndCapture(stream_, &g) == cudaSuccess && g != nullptr) cudaGraphDestroy(g);
  }
  for (cudaGraphExec_t e : execs_)
    if (e != nullptr) cudaGraphExecDestroy(e);
}

void PieceGraphs::begin() {
  MOE_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  capturing_ = true;
}

void PieceGraphs::end_and_launch(size_t slot, CudaBackendStats& stats) {
  cudaGraph_t graph = nullptr;
  capturing_ = false;
  MOE_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  if (execs_.size() <= slot) execs_.resize(slot + 1, nullptr);
  cudaGraphExec_t& exec = execs_[slot];
  bool updated = false;
  if (exec != nullptr) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(exec, graph, &info) == cudaSuccess) {
      updated = true;
      ++stats.graph_updates;
    } else {
      cudaGetLastError();  // the update's failure is an answer, not an error
      MOE_CUDA_CHECK(cudaGraphExecDestroy(exec));
      exec = nullptr;
    }
  }
  if (!updated) {
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    if (err != cudaSuccess) {
      cudaGraphDestroy(graph);
      exec = nullptr;
      MOE_CUDA_CHECK(err);
    }
    ++stats.graph_instantiations;
  }
  MOE_CUDA_CHECK(cudaGraphDestroy(graph));
  MOE_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
  ++stats.graph_launches;
}

}  // namespace moe
