#include "runtime/offload/expert_offload.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace moe {

uint64_t forward_workspace_bytes(const ModelConfig& c, int64_t max_step_tokens) {
  const auto m = static_cast<uint64_t>(max_step_tokens);
  const auto h = static_cast<uint64_t>(c.hidden_size), e = static_cast<uint64_t>(c.num_experts);
  const auto qw = static_cast<uint64_t>(c.q_width()), kvw = static_cast<uint64_t>(c.kv_width());
  const uint64_t width =
      static_cast<uint64_t>(std::max({c.expert_intermediate, c.dense_intermediate, c.shared_intermediate, int64_t{1}}));
  // Transformer: ids, x, xn, proj, ffn_out, q, k, v, attn, router logits, expert in/out, shared
  // gate; last norm and logits. CPU backend: gate and up intermediates. Speculation: norm, logits.
  const uint64_t per_token = 1 + 6 * h + 2 * qw + 2 * kvw + e + 1 + 2 * width + h + e;
  return 4 * (m * per_token + h + static_cast<uint64_t>(c.vocab_size));
}

std::unique_ptr<ExpertOffload> ExpertOffload::create(const Model& model, Backend& backend, int64_t max_step_tokens,
                                                     uint64_t kv_cache_bytes, const OffloadBudget& budget,
                                                     const OffloadOptions& options) {
  const PackedStore* store = model.packed();
  if (store == nullptr)
    fail(model.source().dir().string(),
         ": expert offloading reads experts from a packed store's experts.bin; convert the model first "
         "(moe convert --model DIR --quant RECIPE --out PACKED, or --quant attn=keep to keep the weights as they are)");
  const ModelConfig& c = model.config();
  auto o = std::unique_ptr<ExpertOffload>(new ExpertOffload());
  o->layout_ = std::make_unique<ExpertLayout>(
      ExpertLayout::from_store(*store, c, model.layout().layers().begin, model.layout().layers().end));
  const ModelWeights& w = model.weights();
  const uint64_t slot = SlotPool::round_up(o->layout_->largest_bytes());
  const int64_t staging = OffloadedExperts::kStagingSlots;
  if (budget.expert_mem || budget.expert_fraction) {
    const int64_t count = o->layout_->count();
    const int64_t slots =
        budget.expert_mem
            ? slots_for_expert_bytes(*budget.expert_mem, slot, count)
            : std::clamp<int64_t>(std::llround(*budget.expert_fraction * static_cast<double>(count)), 1, count);
    o->budget_ = HostTierBudget{.host_mem = 0,
                                .dense = w.bytes - w.expert_bytes,
                                .kv_cache = kv_cache_bytes,
                                .workspace = forward_workspace_bytes(c, max_step_tokens),
                                .slot_bytes = slot,
                                .experts_total = o->layout_->count(),
                                .slots = slots,
                                .staging_slots = staging};
    o->budget_.host_mem = o->budget_.accounted();
  } else {
    o->budget_ =
        plan_host_tier(budget.host_mem.value_or(default_host_budget()), w.bytes - w.expert_bytes, kv_cache_bytes,
                       forward_workspace_bytes(c, max_step_tokens), slot, o->layout_->count(), 1, staging);
  }
  o->experts_ =
      std::make_unique<OffloadedExperts>(*o->layout_, c, w, backend, max_step_tokens, o->budget_.slots, options);
  return o;
}

}  // namespace moe
