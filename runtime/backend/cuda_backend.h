// The CUDA backend: the Backend interface on one NVIDIA GPU. Weights, activations and KV caches
// live in device memory (one pool, no allocation on the hot path); ops are queued on one stream
// and run asynchronously; copy_to_host, route_topk and synchronize are the only host waits.
// Quantized weights are rewritten at load into the device layout (kernels/cuda/quant_repack.cuh),
// row for row of the same size, so row views of fused expert tensors stay valid.
//
// Decode steps are captured as CUDA graphs: a step is cut by its host waits (the router's
// results go to the host every MoE layer), so each piece between two waits is captured when all
// its ops have one token row, and replayed through cudaGraphExecUpdate on the next step (same
// kernels, new arguments: positions, row indices). Anything else runs eagerly.
//
// This header includes no CUDA header (pimpl): code outside the CUDA backend and kernels/cuda
// compiles the same with or without CUDA. Built only when MOE_HAVE_CUDA.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/backend/backend.h"

namespace moe {

struct CudaBackendOptions {
  int device = 0;
  bool graphs = true;  // capture single-token pieces of the step as CUDA graphs (MOE_CUDA_GRAPHS=0: off)
};

// Counted, never logged.
struct CudaBackendStats {
  uint64_t graph_launches = 0;  // pieces replayed from a graph
  uint64_t graph_instantiations = 0;
  uint64_t graph_updates = 0;  // successful cudaGraphExecUpdate
  uint64_t eager_pieces = 0;   // pieces run without a graph
  uint64_t forced_syncs = 0;   // waits the host argument ring forced (it filled up)
  uint64_t device_bytes = 0;   // pool bytes handed out (weights, activations, caches)
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options = {});
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override;

  Tensor alloc(DType dtype, std::initializer_list<int64_t> shape) override;
  Tensor load_weight(const TensorView& w) override;
  Tensor adopt_weight_in_place(Tensor w) override;
  void copy_from_host(const void* src, uint64_t bytes, Tensor& dst) override;
  void copy_to_host(const Tensor& src, void* dst, uint64_t bytes) override;
  void synchronize() override;
  // The VRAM tier of expert offloading (runtime/backend/cuda_expert_slots.cpp): slots from the
  // pool, a copy stream, events against the compute stream.
  std::unique_ptr<DeviceExpertSlots> make_expert_slots(int64_t slots, uint64_t slot_bytes) override;
  DeviceMemory device_memory() const override;

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) override;
  void rope(Tensor& x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions, float theta) override;
  void clamp(Tensor& x, float limit) override;
  void kv_append(const Tensor& k, const Tensor& v, const KvBatch& batch, Tensor& k_cache, Tensor& v_cache) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const KvBatch& batch, int64_t n_heads,
                 int64_t window, float scale, Tensor& out) override;
  void fill_zero(Tensor& x) override;
  void add(Tensor& x, const Tensor& y) override;
  void route_topk(const Tensor& logits, int64_t top_k, bool renormalize, std::span<int32_t> ids,
                  std::span<float> weights) override;
  void swiglu_mlp(const Tensor& x, const MlpWeights& w, Tensor& y) override;
  void gather_rows(const Tensor& x, std::span<const int32_t> rows, Tensor& out) override;
  void scatter_add_rows(const Tensor& x, std::span<const int32_t> rows, std::span<const float> scale,
                        Tensor& acc) override;
  void add_sigmoid_gated(const Tensor& x, const Tensor& gate_logit, Tensor& acc) override;

  CudaBackendStats stats() const;
  int device_index() const;
  // Theoretical DRAM bandwidth of the device from its reported bus width and clock (GB/s).
  double peak_bandwidth_gbs() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Number of CUDA devices (0 when there is no driver or no GPU). Never throws.
int cuda_device_count();

}  // namespace moe
