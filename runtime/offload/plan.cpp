#include "runtime/offload/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "runtime/core/error.h"
#include "runtime/offload/budget.h"
#include "runtime/offload/expert_offload.h"
#include "runtime/offload/slot_pool.h"

namespace moe {

uint64_t stored_bytes(const StorageChoice& choice, DType source_dtype, int64_t rows, int64_t cols) {
  const auto r = static_cast<uint64_t>(rows);
  switch (choice.mode) {
    case StorageChoice::Mode::kQuant: return r * quant_row_bytes(choice.quant, cols);
    case StorageChoice::Mode::kDense:
      return r * static_cast<uint64_t>(cols) * static_cast<uint64_t>(dtype_bits(choice.dtype)) / 8;
    case StorageChoice::Mode::kKeep:
      return r * static_cast<uint64_t>(cols) * static_cast<uint64_t>(dtype_bits(source_dtype)) / 8;
  }
  return 0;
}

MemoryPlan make_plan(const ModelConfig& c, const QuantRecipe& recipe, const PlanInputs& in) {
  MemoryPlan p;
  p.gpu = in.gpu_mem > 0;
  const int64_t h = c.hidden_size, v = c.vocab_size;
  auto bytes = [&](TensorKind k, int64_t rows, int64_t cols) {
    if (const auto it = in.stored_bytes_per_weight.find(k); it != in.stored_bytes_per_weight.end())
      return static_cast<uint64_t>(std::ceil(it->second * static_cast<double>(rows) * static_cast<double>(cols)));
    return stored_bytes(recipe.choice(k), in.source_dtype, rows, cols);
  };
  const uint64_t norm = stored_bytes({}, in.source_dtype, 1, h);
  uint64_t attn = 0, norms = 0, routers = 0, shared = 0, dense = 0, experts = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    attn += bytes(TensorKind::kAttention, c.q_width(), h) + 2 * bytes(TensorKind::kAttention, c.kv_width(), h) +
            bytes(TensorKind::kAttention, h, c.q_width());
    norms += 2 * norm;
    if (c.layer_is_moe[static_cast<size_t>(l)]) {
      ++p.moe_layers;
      routers += bytes(TensorKind::kRouter, c.num_experts, h);
      p.expert_size = 2 * bytes(TensorKind::kExpert, c.expert_intermediate, h) +
                      bytes(TensorKind::kExpert, h, c.expert_intermediate);
      experts += static_cast<uint64_t>(c.num_experts) * p.expert_size;
      if (c.shared_intermediate > 0)
        shared +=
            3 * bytes(TensorKind::kSharedExpert, c.shared_intermediate, h) + bytes(TensorKind::kSharedExpert, 1, h);
    } else {
      dense += 3 * bytes(TensorKind::kDenseMlp, c.dense_intermediate, h);
    }
  }
  const uint64_t embed = bytes(TensorKind::kEmbedding, v, h);
  const uint64_t lm_head = c.tie_word_embeddings ? 0 : bytes(TensorKind::kLmHead, v, h);
  p.kv_bytes = 2 * 4 * static_cast<uint64_t>(c.num_layers * c.kv_width() * in.context);
  p.workspace_bytes = forward_workspace_bytes(c, std::min(in.prefill_chunk, in.context));
  p.dense_bytes = attn + norms + routers + shared + dense + embed + lm_head;
  p.expert_bytes = experts;
  p.experts_total = p.moe_layers * c.num_experts;
  p.top_k = c.experts_per_token;
  const uint64_t slot = SlotPool::round_up(std::max<uint64_t>(p.expert_size, 1));

  // The fast tier (VRAM on a GPU plan, RAM on a CPU plan) takes the dense part first.
  const uint64_t fast_budget = p.gpu ? in.gpu_mem : in.host_mem;
  const HostTierBudget fast = plan_host_tier(fast_budget, p.dense_bytes, p.kv_bytes, p.workspace_bytes, slot,
                                             p.experts_total, 1, p.gpu ? 0 : 1, p.gpu ? "--gpu-mem" : "--host-mem");
  const std::string fast_name = p.gpu ? "VRAM" : "RAM";
  if (p.gpu) {
    p.experts_vram = fast.slots;
    const int64_t host_slots = static_cast<int64_t>(in.host_mem / slot);  // pinned host copies
    p.experts_ram = std::min(p.experts_total - p.experts_vram, host_slots);
  } else {
    p.experts_ram = fast.slots;
  }
  p.experts_nvme = p.experts_total - p.experts_vram - p.experts_ram;
  const int64_t in_fast = p.gpu ? p.experts_vram : p.experts_ram;
  const uint64_t total = p.dense_bytes + p.expert_bytes;
  p.offload_ratio = total ? static_cast<double>(static_cast<uint64_t>(p.experts_total - in_fast) * p.expert_size) /
                                static_cast<double>(total)
                          : 0;

  const std::string expert_tier = str_cat(p.experts_vram ? str_cat(p.experts_vram, " VRAM ") : "",
                                          p.experts_ram ? str_cat(p.experts_ram, " RAM ") : "",
                                          p.experts_nvme ? str_cat(p.experts_nvme, " NVMe") : "");
  p.components = {{"embedding", embed, fast_name},       {"attention", attn, fast_name},
                  {"norms", norms, fast_name},           {"routers", routers, fast_name},
                  {"shared experts", shared, fast_name}, {"dense MLPs", dense, fast_name},
                  {"LM head", lm_head, fast_name},       {"routed experts", experts, expert_tier},
                  {"KV cache", p.kv_bytes, fast_name},   {"workspace", p.workspace_bytes, fast_name}};

  // Per token: every layer computes top_k experts; with uniform routing an expert is in the fast
  // tier with probability in_fast / total, and on the drive with probability nvme / total.
  const double n_used = static_cast<double>(p.moe_layers * p.top_k);
  const double tot = static_cast<double>(std::max<int64_t>(1, p.experts_total));
  const double p_fast = static_cast<double>(in_fast) / tot, p_nvme = static_cast<double>(p.experts_nvme) / tot;
  const uint64_t dense_active = p.dense_bytes - embed + embed / static_cast<uint64_t>(std::max<int64_t>(1, v)) +
                                (c.tie_word_embeddings ? bytes(TensorKind::kEmbedding, v, h) : 0);
  const double expert_active = n_used * static_cast<double>(p.expert_size);
  p.nvme_reads_per_token = n_used * p_nvme;
  if (p.gpu) {
    p.link_misses_per_token = n_used * (1 - p_fast);
    p.fast_bytes_per_token = dense_active + static_cast<uint64_t>(expert_active);
    if (in.bw.device > 0) p.t_fast = static_cast<double>(p.fast_bytes_per_token) / in.bw.device;
    if (in.bw.link > 0) p.t_link = p.link_misses_per_token * static_cast<double>(p.expert_size) / in.bw.link;
  } else {
    p.fast_bytes_per_token = dense_active + static_cast<uint64_t>(expert_active);
    if (in.bw.dram > 0) p.t_fast = static_cast<double>(p.fast_bytes_per_token) / in.bw.dram;
  }
  if (in.bw.nvme > 0) p.t_nvme = p.nvme_reads_per_token * static_cast<double>(slot) / in.bw.nvme;
  const bool known =
      (p.gpu ? in.bw.device > 0 && in.bw.link > 0 : in.bw.dram > 0) && (p.experts_nvme == 0 || in.bw.nvme > 0);
  if (known) {
    const double worst = std::max({p.t_fast, p.t_link, p.t_nvme});
    const double sum = p.t_fast + p.t_link + p.t_nvme;
    p.tokens_per_s_bound = worst > 0 ? 1 / worst : 0;
    p.tokens_per_s_no_overlap = sum > 0 ? 1 / sum : 0;
  }
  return p;
}

namespace {

// printf into `out` (one line of the plan); the format attribute lets the compiler check it.
__attribute__((format(printf, 2, 3))) void append_line(std::string& out, const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  out += buf;
}

}  // namespace

std::string format_plan(const MemoryPlan& p, const PlanInputs& in) {
  std::string out;
#define line(...) append_line(out, __VA_ARGS__)
  line("%-16s %12s  %s\n", "component", "bytes", "tier");
  for (const PlanComponent& c : p.components) {
    if (c.bytes == 0) continue;
    line("%-16s %12s  %s\n", c.name.c_str(), format_bytes(c.bytes).c_str(), c.tier.c_str());
  }
  line("%-16s %12s  (dense %s, experts %s; one expert %s)\n", "total",
       format_bytes(p.dense_bytes + p.expert_bytes + p.kv_bytes + p.workspace_bytes).c_str(),
       format_bytes(p.dense_bytes).c_str(), format_bytes(p.expert_bytes).c_str(), format_bytes(p.expert_size).c_str());
  line("budgets          %s%s RAM\n", p.gpu ? str_cat(format_bytes(in.gpu_mem), " VRAM, ").c_str() : "",
       format_bytes(in.host_mem).c_str());
  line("experts          %lld in all: %lld in VRAM, %lld in RAM, %lld on NVMe\n",
       static_cast<long long>(p.experts_total), static_cast<long long>(p.experts_vram),
       static_cast<long long>(p.experts_ram), static_cast<long long>(p.experts_nvme));
  line("offload ratio    %.1f%% of the weight bytes outside %s\n", 100 * p.offload_ratio, p.gpu ? "VRAM" : "RAM");
  line("per token        %lld experts computed; %.2f copied host->device, %.2f read from NVMe (uniform routing)\n",
       static_cast<long long>(p.moe_layers * p.top_k), p.link_misses_per_token, p.nvme_reads_per_token);
  auto bw = [](double b) {
    return b > 0 ? str_cat(static_cast<int64_t>(b / 1e6) / 1000.0, " GB/s") : std::string("?");
  };
  if (p.gpu)
    line("bound terms      HBM %.2f ms (%s at %s), PCIe %.2f ms (at %s), NVMe %.2f ms (at %s)\n", 1e3 * p.t_fast,
         format_bytes(p.fast_bytes_per_token).c_str(), bw(in.bw.device).c_str(), 1e3 * p.t_link, bw(in.bw.link).c_str(),
         1e3 * p.t_nvme, bw(in.bw.nvme).c_str());
  else
    line("bound terms      DRAM %.2f ms (%s at %s), NVMe %.2f ms (at %s)\n", 1e3 * p.t_fast,
         format_bytes(p.fast_bytes_per_token).c_str(), bw(in.bw.dram).c_str(), 1e3 * p.t_nvme, bw(in.bw.nvme).c_str());
  if (p.tokens_per_s_bound > 0)
    line("tokens/s bound   %.2f with full overlap, %.2f with none (calculator: 0.9 x bound = %.2f)\n",
         p.tokens_per_s_bound, p.tokens_per_s_no_overlap, 0.9 * p.tokens_per_s_bound);
  else
    line("tokens/s bound   unknown: give the missing bandwidths (--dram-bw, --nvme-bw, --pcie-bw, --hbm-bw)\n");
#undef line
  return out;
}

}  // namespace moe
