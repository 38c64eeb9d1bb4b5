// Sets up expert offloading for a model loaded from a packed store: reads the experts' layout
// from the manifest, sizes the RAM tier from the budget (dense weights, KV cache and workspaces
// accounted first) and creates the OffloadedExperts the Transformer takes as its
// ExpertProvider.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "runtime/backend/backend.h"
#include "runtime/model/model.h"
#include "runtime/offload/budget.h"
#include "runtime/offload/expert_layout.h"
#include "runtime/offload/gpu_offloaded_experts.h"
#include "runtime/offload/offloaded_experts.h"

namespace moe {

struct OffloadBudget {
  std::optional<uint64_t> host_mem;       // the whole host side (--host-mem); default: the machine's
  std::optional<uint64_t> expert_mem;     // or: bytes for expert slots directly
  std::optional<double> expert_fraction;  // or: this fraction of the experts get a slot (benchmarks)
  // GPU runs (a backend with VRAM expert slots): the device side.
  std::optional<uint64_t> gpu_mem;      // --gpu-mem: VRAM for the whole model; default: what is in use + 90% of free
  std::optional<double> vram_fraction;  // or: this fraction of the experts get a VRAM slot (tests, benchmarks)
};

// Makes the VRAM tier's slots; by default Backend::make_expert_slots. Tests pass a CPU fake.
using DeviceSlotsFactory = std::function<std::unique_ptr<DeviceExpertSlots>(int64_t slots, uint64_t slot_bytes)>;

// Device bytes beyond the forward pass's buffers that a GPU run needs besides the expert slots:
// the device pool's last partly used chunk and the weight-upload staging (CUDA backend).
constexpr uint64_t kDeviceOverheadBytes = uint64_t{256} << 20;

// Activation and scratch bytes of a forward pass of up to `max_step_tokens` tokens (the
// Transformer's buffers, the CPU backend's SwiGLU intermediates, the speculative routing).
uint64_t forward_workspace_bytes(const ModelConfig& c, int64_t max_step_tokens);

// Host bytes of a GPU run's CPU experts (--miss-policy cpu/auto): the layer input, their outputs,
// the worker's rows and SwiGLU intermediates.
uint64_t host_expert_workspace_bytes(const ModelConfig& c, int64_t max_step_tokens);

class ExpertOffload {
 public:
  // Throws moe::Error when the model is not a packed store (naming the directory and the
  // command that makes one) or the budget is too small (with every number).
  // A backend with VRAM expert slots (Backend::make_expert_slots, or `make_slots` when given) gets
  // the GPU tiers (GpuOffloadedExperts: VRAM over RAM over NVMe); any other the RAM tier
  // (OffloadedExperts). The model must have been loaded with ExpertBinding::kMapped.
  static std::unique_ptr<ExpertOffload> create(const Model& model, Backend& backend, int64_t max_step_tokens,
                                               uint64_t kv_cache_bytes, const OffloadBudget& budget,
                                               const OffloadOptions& options,
                                               const DeviceSlotsFactory& make_slots = {});

  bool on_gpu() const { return gpu_ != nullptr; }
  // The provider for Transformer::set_expert_provider.
  ExpertProvider& provider();
  // CPU runs only (throws on a GPU run).
  OffloadedExperts& experts();
  const OffloadedExperts& experts() const;
  // GPU runs only (throws on a CPU run).
  GpuOffloadedExperts& gpu_experts();
  const OffloadStats& stats() const;
  // Off: the step stats keep only their running total (OffloadStats::set_keep_steps).
  void keep_step_log(bool on);
  const PrefetchCounts& prefetch_totals() const;
  std::string describe() const;
  int64_t place_static(std::span<const ExpertKey> keys, int64_t max_slots);
  // The host side (RAM slots); on a GPU run also the device side (VRAM slots).
  const HostTierBudget& budget() const { return budget_; }
  const HostTierBudget& vram_budget() const { return vram_budget_; }
  const ExpertLayout& layout() const { return *layout_; }

 private:
  void create_gpu(const Model& model, Backend& backend, int64_t max_step_tokens, uint64_t kv_cache_bytes,
                  const OffloadBudget& budget, const OffloadOptions& options, const DeviceSlotsFactory& make_slots);

  std::unique_ptr<ExpertLayout> layout_;
  HostTierBudget budget_, vram_budget_;
  std::unique_ptr<OffloadedExperts> experts_;
  std::unique_ptr<GpuOffloadedExperts> gpu_;
};

}  // namespace moe
