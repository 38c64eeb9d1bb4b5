// The offloading planner (`moe plan`): from a model's config, a quantization recipe, the tier
// budgets and the bandwidths, without loading any weight: memory per component, what sits in
// which tier, the offload ratio, and the tokens/s bound of PERFORMANCE.md:
//   t_token >= max(W_fast / B_fast, misses * S_expert / B_link, nvme_reads * S_expert / B_nvme)
// (the sum of the terms without overlap). Misses assume routing spread evenly over the experts
// (a random router's; trained routers are skewed, so real hit rates are higher). Pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/model/config.h"
#include "runtime/quant/recipe.h"

namespace moe {

struct Bandwidths {   // bytes per second; 0 = unknown
  double device = 0;  // GPU HBM (GPU plans)
  double link = 0;    // host -> device (PCIe)
  double dram = 0;    // host DRAM read
  double nvme = 0;    // drive read (O_DIRECT)
};

struct PlanInputs {
  int64_t context = 4096;
  int64_t prefill_chunk = 256;
  uint64_t gpu_mem = 0;               // 0: a CPU plan (no VRAM tier)
  uint64_t host_mem = 0;              // RAM budget
  DType source_dtype = DType::kBF16;  // what "keep" stores
  Bandwidths bw;
  // Stored bytes per weight of each kind as a file holds them (a GGUF file's mixed block types),
  // used instead of the recipe for the kinds present.
  std::map<TensorKind, double> stored_bytes_per_weight;
};

struct PlanComponent {
  std::string name;
  uint64_t bytes = 0;
  std::string tier;  // "VRAM", "RAM", "RAM+NVMe", ...
};

struct MemoryPlan {
  std::vector<PlanComponent> components;
  uint64_t dense_bytes = 0;   // non-expert weights
  uint64_t expert_bytes = 0;  // every routed expert
  uint64_t expert_size = 0;   // one expert (the slot size)
  uint64_t kv_bytes = 0, workspace_bytes = 0;
  int64_t moe_layers = 0, experts_total = 0, top_k = 0;
  int64_t experts_vram = 0, experts_ram = 0, experts_nvme = 0;
  double offload_ratio = 0;  // bytes not in the fast tier (VRAM on a GPU plan, RAM on a CPU plan) / total
  // Per decoded token, with uniform routing:
  uint64_t fast_bytes_per_token = 0;          // dense active + top_k experts per layer, read where they are computed
  double link_misses_per_token = 0;           // GPU: experts copied host -> device
  double nvme_reads_per_token = 0;            // experts read from the drive
  double t_fast = 0, t_link = 0, t_nvme = 0;  // seconds per token, each term
  double tokens_per_s_bound = 0;              // 1 / max(terms); 0 when a bandwidth is unknown
  double tokens_per_s_no_overlap = 0;         // 1 / sum(terms)
  bool gpu = false;
};

// Bytes of a (rows x cols) weight stored as `choice` ("keep" = source_dtype).
uint64_t stored_bytes(const StorageChoice& choice, DType source_dtype, int64_t rows, int64_t cols);

// Throws moe::Error with the numbers when the budget cannot hold the dense part (as the run would).
MemoryPlan make_plan(const ModelConfig& c, const QuantRecipe& recipe, const PlanInputs& in);

// The report `moe plan` prints.
std::string format_plan(const MemoryPlan& p, const PlanInputs& in);

}  // namespace moe
