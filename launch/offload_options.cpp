#include "launch/offload_options.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/offload/budget.h"

namespace moe::cli {

void add_offload_options(CLI::App& cmd, EngineOptions& o) {
  cmd.add_option("--host-mem", o.host_mem,
                 "Offload experts: RAM budget for the whole model (e.g. 8G; 'auto' = 90% of available). Dense\n"
                 "weights, KV cache and workspaces come first; the rest holds expert slots, and the other\n"
                 "experts are read from the packed store (experts.bin) with O_DIRECT")
      ->group("Expert offloading");
  cmd.add_option("--gpu-mem", o.gpu_mem,
                 "Offload experts on a GPU run: VRAM budget for the whole model (e.g. 16G). Dense weights,\n"
                 "KV cache and workspaces come first; the rest holds VRAM expert slots over the --host-mem\n"
                 "RAM tier (default auto). The CPU backend has no VRAM tier")
      ->group("Expert offloading");
  cmd.add_option("--cache-policy", o.offload.cache_policy, "Expert cache replacement: lru or lfu (with decay)")
      ->capture_default_str()
      ->group("Expert offloading");
  cmd.add_option("--miss-policy", o.miss_policy,
                 "On a miss: fetch (read into the cache), cpu (CPU run: stream through a staging slot, never\n"
                 "evict; GPU run: compute it on the CPU from its RAM copy while the GPU goes on), auto (CPU run:\n"
                 "fetch when the policy ranks the expert above its victim; GPU run: whichever the cost model\n"
                 "predicts is sooner)")
      ->capture_default_str()
      ->group("Expert offloading");
  cmd.add_option("--prefetch-depth", o.offload.prefetch_depth,
                 "Speculative prefetch: apply the routers of the next N layers to the hidden state; 0 = off")
      ->capture_default_str()
      ->group("Expert offloading");
  cmd.add_option("--expert-reader", o.expert_reader, "Expert reads: auto, uring (io_uring) or pread (thread pool)")
      ->capture_default_str()
      ->group("Expert offloading");
  cmd.add_option("--offload-stats", o.offload_stats_file,
                 "Write per-step offloading metrics (hits, misses, recall, bytes per tier, time per phase)\n"
                 "as JSON lines to this file")
      ->group("Expert offloading");
  cmd.add_option("--placement", o.placement_file,
                 "Static placement: a routing profile from `moe profile`; its most used experts are loaded\n"
                 "before serving and never evicted (up to half the slots)")
      ->group("Expert offloading");
}

void check_offload_options(const EngineOptions& o) {
  if (!o.gpu_mem.empty()) {
    parse_mem_size(o.gpu_mem, "--gpu-mem");
    if (o.device == "cpu")
      fail("--gpu-mem ", o.gpu_mem, ": this is a CPU run (--device cpu), which has no VRAM tier; use --host-mem ",
           "for the RAM budget (--gpu-mem is for GPU runs and for `moe plan`)");
  }
  const bool offloading = offload_requested(o);
  if (!o.host_mem.empty() && o.host_mem != "auto") parse_mem_size(o.host_mem, "--host-mem");
  parse_miss_policy(o.miss_policy);
  parse_reader_kind(o.expert_reader);
  make_cache_policy(o.offload.cache_policy);
  MOE_CHECK(o.offload.prefetch_depth >= 0, "--prefetch-depth must be 0 or more, got ", o.offload.prefetch_depth);
  // --placement also places experts over the ranks under expert parallelism (--ep).
  if (!offloading && (!o.offload_stats_file.empty() || (!o.placement_file.empty() && o.parallel.ep == 1)))
    fail(!o.offload_stats_file.empty() ? "--offload-stats" : "--placement",
         " needs expert offloading (give --host-mem (e.g. --host-mem auto), or --gpu-mem on a GPU run)",
         !o.offload_stats_file.empty() ? "" : " or expert parallelism (--ep)");
}

bool offload_requested(const EngineOptions& o) {
  return !o.host_mem.empty() || (!o.gpu_mem.empty() && o.device != "cpu");
}

std::vector<ExpertKey> read_placement(const std::string& path) {
  std::ifstream in(path);
  MOE_CHECK(in.good(), path, ": cannot open the routing profile");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not a routing profile from `moe profile`: ", e.what());
  }
  MOE_CHECK(j.contains("counts") && j["counts"].is_array(), path,
            ": not a routing profile from `moe profile` (no \"counts\" array)");
  struct Use {
    ExpertKey key;
    uint64_t count;
  };
  std::vector<Use> uses;
  const nlohmann::json& counts = j["counts"];
  for (size_t l = 0; l < counts.size(); ++l) {
    MOE_CHECK(counts[l].contains("layer") && counts[l].contains("experts"), path, ": counts[", l,
              "] needs \"layer\" and \"experts\"");
    const int32_t layer = counts[l]["layer"].get<int32_t>();
    const nlohmann::json& per = counts[l]["experts"];
    for (size_t e = 0; e < per.size(); ++e) uses.push_back({{layer, static_cast<int32_t>(e)}, per[e].get<uint64_t>()});
  }
  std::stable_sort(uses.begin(), uses.end(), [](const Use& a, const Use& b) { return a.count > b.count; });
  std::vector<ExpertKey> keys;
  for (const Use& u : uses)
    if (u.count > 0) keys.push_back(u.key);
  return keys;
}

void prepare_offload(Engine& e) {
  const EngineOptions& o = e.options;
  if (!offload_requested(o)) return;
  OffloadOptions opts = o.offload;
  opts.miss_policy = parse_miss_policy(o.miss_policy);
  opts.reader = parse_reader_kind(o.expert_reader);
  OffloadBudget budget;
  if (!o.host_mem.empty() && o.host_mem != "auto") budget.host_mem = parse_mem_size(o.host_mem, "--host-mem");
  if (!o.gpu_mem.empty()) budget.gpu_mem = parse_mem_size(o.gpu_mem, "--gpu-mem");
  e.transformer->set_expert_provider(nullptr);
  e.offload.reset();
  e.offload = ExpertOffload::create(*e.model, *e.backend, e.transformer->max_step_tokens(), e.kv_bytes(), budget, opts);
  if (!o.placement_file.empty() && o.parallel.ep == 1) {
    const std::vector<ExpertKey> keys = read_placement(o.placement_file);
    e.offload->place_static(keys, (e.offload->on_gpu() ? e.offload->vram_budget() : e.offload->budget()).slots / 2);
  }
  e.transformer->set_expert_provider(&e.offload->provider());
}

void print_offload_stats(std::FILE* out, const Engine& e) {
  if (!e.offload) return;
  const ExpertOffload& x = *e.offload;
  if (x.on_gpu()) std::fprintf(out, "offload   %s\n", x.vram_budget().describe("VRAM").c_str());
  std::fprintf(out, "%s%s\n          %s\n%s", x.on_gpu() ? "          " : "offload   ", x.budget().describe().c_str(),
               x.describe().c_str(), x.stats().summary("          ").c_str());
  if (!e.options.offload_stats_file.empty()) {
    x.stats().write_jsonl(e.options.offload_stats_file);
    std::fprintf(out, "          per-step metrics written to %s\n", e.options.offload_stats_file.c_str());
  }
}

}  // namespace moe::cli
