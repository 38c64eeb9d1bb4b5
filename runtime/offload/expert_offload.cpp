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
                                                     const OffloadOptions& options,
                                                     const DeviceSlotsFactory& make_slots) {
  const PackedStore* store = model.packed();
  if (store == nullptr && model.gguf() != nullptr)
    fail(model.source().dir().string(),
         ": expert offloading reads experts from a packed store's experts.bin, whose 4 KiB-aligned extents hold "
         "each expert's gate, up and down together; convert the GGUF file once, keeping its block types (moe "
         "convert --model FILE.gguf --quant keep --out PACKED), and run PACKED");
  if (store == nullptr)
    fail(model.source().dir().string(),
         ": expert offloading reads experts from a packed store's experts.bin; convert the model first "
         "(moe convert --model DIR --quant RECIPE --out PACKED, or --quant attn=keep to keep the weights as they are)");
  const ModelConfig& c = model.config();
  auto o = std::unique_ptr<ExpertOffload>(new ExpertOffload());
  o->layout_ = std::make_unique<ExpertLayout>(
      ExpertLayout::from_store(*store, c, model.layout().layers().begin, model.layout().layers().end,
                               [&model](int64_t layer, int64_t e) { return model.layout().owns_expert(layer, e); }));
  const ModelWeights& w = model.weights();
  const uint64_t slot = SlotPool::round_up(o->layout_->largest_bytes());
  if (make_slots || backend.device_memory().total > 0) {
    o->create_gpu(model, backend, max_step_tokens, kv_cache_bytes, budget, options, make_slots);
    return o;
  }
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

namespace {

int64_t slots_for_fraction(double f, int64_t count) {
  return std::clamp<int64_t>(std::llround(f * static_cast<double>(count)), 1, count);
}

}  // namespace

uint64_t host_expert_workspace_bytes(const ModelConfig& c, int64_t max_step_tokens) {
  const auto m = static_cast<uint64_t>(max_step_tokens), h = static_cast<uint64_t>(c.hidden_size);
  const auto k = static_cast<uint64_t>(c.experts_per_token);
  const auto i = static_cast<uint64_t>(std::max<int64_t>(c.expert_intermediate, 1));
  // The layer input on the host, the CPU experts' outputs, the worker's gathered rows and its
  // SwiGLU intermediates.
  return 4 * m * (h + k * h + h + 2 * i);
}

void ExpertOffload::create_gpu(const Model& model, Backend& backend, int64_t max_step_tokens, uint64_t kv_cache_bytes,
                               const OffloadBudget& budget, const OffloadOptions& options,
                               const DeviceSlotsFactory& make_slots) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const uint64_t slot = SlotPool::round_up(layout_->largest_bytes());
  const int64_t count = layout_->count();
  const int64_t staging = GpuOffloadedExperts::kDeviceStagingSlots;
  // The device side: dense weights, KV cache, workspaces and overhead first, then VRAM slots.
  const uint64_t dense = w.bytes - w.expert_bytes;
  const uint64_t workspace = forward_workspace_bytes(c, max_step_tokens) + slot + kDeviceOverheadBytes;
  if (budget.vram_fraction) {
    vram_budget_ = HostTierBudget{.host_mem = 0,
                                  .dense = dense,
                                  .kv_cache = kv_cache_bytes,
                                  .workspace = workspace,
                                  .slot_bytes = slot,
                                  .experts_total = count,
                                  .slots = slots_for_fraction(*budget.vram_fraction, count),
                                  .staging_slots = staging};
    vram_budget_.host_mem = vram_budget_.accounted();
  } else {
    const uint64_t gpu_mem =
        budget.gpu_mem.value_or(dense + kv_cache_bytes + workspace +
                                static_cast<uint64_t>(0.9 * static_cast<double>(backend.device_memory().free)));
    vram_budget_ = plan_host_tier(gpu_mem, dense, kv_cache_bytes, workspace, slot, count, 1, staging, "--gpu-mem");
  }
  // The host side: the dense part lives on the device, so RAM holds the experts' slots and the CPU
  // experts' buffers.
  const uint64_t host_work = host_expert_workspace_bytes(c, max_step_tokens);
  if (budget.expert_mem || budget.expert_fraction) {
    const int64_t slots = budget.expert_mem ? slots_for_expert_bytes(*budget.expert_mem, slot, count)
                                            : slots_for_fraction(*budget.expert_fraction, count);
    budget_ = HostTierBudget{.host_mem = 0,
                             .dense = 0,
                             .kv_cache = 0,
                             .workspace = host_work,
                             .slot_bytes = slot,
                             .experts_total = count,
                             .slots = slots,
                             .staging_slots = 0};
    budget_.host_mem = budget_.accounted();
  } else {
    budget_ = plan_host_tier(budget.host_mem.value_or(default_host_budget()), 0, 0, host_work, slot, count, 1, 0);
  }
  const int64_t device_slots = vram_budget_.slots + staging;
  std::unique_ptr<DeviceExpertSlots> slots =
      make_slots ? make_slots(device_slots, slot) : backend.make_expert_slots(device_slots, slot);
  MOE_CHECK(slots != nullptr, "expert offloading: backend ", backend.name(), " has no VRAM expert slots");
  gpu_ = std::make_unique<GpuOffloadedExperts>(*layout_, c, w, backend, std::move(slots), max_step_tokens,
                                               vram_budget_.slots, budget_.slots, options);
}

ExpertProvider& ExpertOffload::provider() {
  if (gpu_) return *gpu_;
  return *experts_;
}

OffloadedExperts& ExpertOffload::experts() {
  MOE_CHECK(experts_ != nullptr, "expert offloading: this is a GPU run (GpuOffloadedExperts)");
  return *experts_;
}

const OffloadedExperts& ExpertOffload::experts() const {
  MOE_CHECK(experts_ != nullptr, "expert offloading: this is a GPU run (GpuOffloadedExperts)");
  return *experts_;
}

GpuOffloadedExperts& ExpertOffload::gpu_experts() {
  MOE_CHECK(gpu_ != nullptr, "expert offloading: this is a CPU run (OffloadedExperts)");
  return *gpu_;
}

void ExpertOffload::keep_step_log(bool on) {
  if (gpu_)
    gpu_->keep_step_log(on);
  else
    experts_->keep_step_log(on);
}

const OffloadStats& ExpertOffload::stats() const {
  return gpu_ ? gpu_->stats() : experts_->stats();
}

const PrefetchCounts& ExpertOffload::prefetch_totals() const {
  return gpu_ ? gpu_->prefetch_totals() : experts_->prefetch_totals();
}

std::string ExpertOffload::describe() const {
  return gpu_ ? gpu_->describe() : experts_->describe();
}

int64_t ExpertOffload::place_static(std::span<const ExpertKey> keys, int64_t max_slots) {
  return gpu_ ? gpu_->place_static(keys, max_slots) : experts_->place_static(keys, max_slots);
}

}  // namespace moe
