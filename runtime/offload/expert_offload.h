// Sets up expert offloading for a model loaded from a packed store: reads the experts' layout
// from the manifest, sizes the RAM tier from the budget (dense weights, KV cache and workspaces
// accounted first) and creates the OffloadedExperts the Transformer takes as its
// ExpertProvider.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "runtime/backend/backend.h"
#include "runtime/model/model.h"
#include "runtime/offload/budget.h"
#include "runtime/offload/expert_layout.h"
#include "runtime/offload/offloaded_experts.h"

namespace moe {

struct OffloadBudget {
  std::optional<uint64_t> host_mem;       // the whole host side (--host-mem); default: the machine's
  std::optional<uint64_t> expert_mem;     // or: bytes for expert slots directly
  std::optional<double> expert_fraction;  // or: this fraction of the experts get a slot (benchmarks)
};

// Activation and scratch bytes of a forward pass of up to `max_step_tokens` tokens (the
// Transformer's buffers, the CPU backend's SwiGLU intermediates, the speculative routing).
uint64_t forward_workspace_bytes(const ModelConfig& c, int64_t max_step_tokens);

class ExpertOffload {
 public:
  // Throws moe::Error when the model is not a packed store (naming the directory and the
  // command that makes one) or the budget is too small (with every number).
  static std::unique_ptr<ExpertOffload> create(const Model& model, Backend& backend, int64_t max_step_tokens,
                                               uint64_t kv_cache_bytes, const OffloadBudget& budget,
                                               const OffloadOptions& options);

  OffloadedExperts& experts() { return *experts_; }
  const OffloadedExperts& experts() const { return *experts_; }
  const HostTierBudget& budget() const { return budget_; }
  const ExpertLayout& layout() const { return *layout_; }

 private:
  std::unique_ptr<ExpertLayout> layout_;
  HostTierBudget budget_;
  std::unique_ptr<OffloadedExperts> experts_;
};

}  // namespace moe
