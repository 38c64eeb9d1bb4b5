// moe_bench_offload: the CPU expert-offloading benchmark (issue 6, 8a). The Mixtral-shaped
// random model (8 layers, hidden 1024, 8 experts top-2 x 3584, vocab 32000), quantized to a
// packed store, with its experts read from experts.bin on the drive (O_DIRECT) and a RAM budget
// of 25/50/75/100% of the expert slots; then the ablation at one budget: full system (cache +
// speculative prefetch + prefetch admission) / no prefetch / no admission (every prediction read
// at once) / no cache / naive (no cache, no prefetch, one read at a
// time). Each row: decode tokens/s, hit rate, prefetch recall and precision, bytes read from
// the drive per token, and the bound max(RAM bytes / DRAM bandwidth, drive bytes / drive
// bandwidth) from bandwidths measured in the same run. Prints a table, writes one JSON record.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "benchmarks/bench_model.h"
#include "benchmarks/bench_record.h"
#include "benchmarks/device_bandwidth.h"
#include "benchmarks/memory_bandwidth.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/engine/generator.h"
#include "runtime/io/packed_store.h"
#include "runtime/model/model.h"
#include "runtime/offload/bandwidth.h"
#include "runtime/offload/expert_offload.h"
#include "runtime/quant/quant_cache.h"
#include "runtime/quant/synthetic_store.h"

#ifndef MOE_SOURCE_DIR
#define MOE_SOURCE_DIR "."
#endif
#ifndef MOE_CONFIGURE_COMMIT
#define MOE_CONFIGURE_COMMIT ""
#endif

namespace moe::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct Options {
  std::string quant = "q4";
  std::string model_dir = "/tmp/moe-bench-mixtral-moderate";
  // "moderate" (the benchmark model, converted from its checkpoint) or "mixtral-8x7b" (random
  // stores written directly under store_root, one per recipe: 25 GB each at 4 bits).
  std::string shape = "moderate";
  std::string store_root = "/tmp/moe-bench-mixtral-8x7b";
  int threads = 0;
  int64_t prompt_tokens = 32, decode_tokens = 32;
  int warmup = 1;
  std::vector<double> budgets = {0.25, 0.5, 0.75, 1.0};
  double ablation_budget = 0.5;
  std::string reader = "auto";
  std::string out;
  // GPU runs (--device cuda): the VRAM tier over RAM over the drive.
  std::string device = "cpu";
  std::vector<std::string> gpu_mems;                      // --gpu-mem budgets (e.g. 12G 16G), or
  std::vector<double> vram_fractions = {0.25, 0.5};       // fractions of the experts with a VRAM slot
  std::vector<std::string> formats = {"q2", "q3", "q4"};  // expert formats (attention stays q4)
  std::string host_mem;                                   // RAM tier (default: every expert)
  double pcie_gbs = 25;                                   // host -> device bandwidth for the bound
  std::string miss_policy = "auto";
  double router_correlation = 0;  // the moderate model's routers, correlated across layers
};

struct Variant {
  std::string name;
  double budget;
  OffloadOptions o;
};

struct Row {
  Variant v;
  int64_t slots = 0;
  double decode_tps = 0, prefill_tps = 0;
  OffloadStepStats decode;
  double bound_tps = 0;
};

SyntheticModelSpec moderate_spec() {
  SyntheticModelSpec spec = tiny_model_spec("mixtral");
  spec.vocab_size = 32000;
  spec.hidden_size = 1024;
  spec.num_layers = 8;
  spec.num_heads = 16;
  spec.num_kv_heads = 4;
  spec.num_experts = 8;
  spec.experts_per_token = 2;
  spec.expert_intermediate = 3584;
  spec.shared_intermediate = 3584;
  spec.dense_intermediate = 4 * 3584;
  spec.max_position_embeddings = 4096;
  return spec;
}

// Mixtral-8x7B's shapes: 32 layers, hidden 4096, 32/8 heads, 8 experts top-2 of width 14336.
SyntheticModelSpec mixtral_8x7b_spec() {
  SyntheticModelSpec spec = moderate_spec();
  spec.hidden_size = 4096;
  spec.num_layers = 32;
  spec.num_heads = 32;
  spec.num_kv_heads = 8;
  spec.expert_intermediate = 14336;
  spec.shared_intermediate = 14336;
  spec.dense_intermediate = 14336;
  spec.max_position_embeddings = 32768;
  return spec;
}

// The packed store of `recipe` for the benchmark's shape: the moderate model converted from its
// checkpoint (cached), or a random Mixtral-8x7B-shaped store written directly (reused when
// present with the same recipe).
fs::path store_for(const Options& o, const QuantRecipe& recipe) {
  if (o.shape == "moderate") {
    prepare_model(o.model_dir, moderate_spec(), false);
    return cached_packed_model(o.model_dir, recipe, QuantizeOptions{}, {}, nullptr);
  }
  MOE_CHECK(o.shape == "mixtral-8x7b", "--shape: '", o.shape, "' is not moderate or mixtral-8x7b");
  std::string name = recipe.spec();
  for (char& ch : name)
    if (ch == '=' || ch == ',') ch = '_';
  const fs::path dir = fs::path(o.store_root) / name;
  if (PackedStore::is_packed(dir) && PackedStore::open(dir, /*verify=*/false).recipe() == recipe.spec()) return dir;
  std::fprintf(stderr, "writing a random Mixtral-8x7B-shaped store into %s ...\n", dir.string().c_str());
  int last = -1;
  write_synthetic_packed_store(mixtral_8x7b_spec(), recipe, dir, /*replace=*/true, [&](int64_t done, int64_t total) {
    const int pct = static_cast<int>(100 * done / std::max<int64_t>(1, total));
    if (pct / 10 != last / 10) std::fprintf(stderr, "  %d%%\n", pct);
    last = pct;
  });
  return dir;
}

int run(const Options& o) {
  MOE_CHECK(o.shape == "moderate", "--shape mixtral-8x7b is for --device cuda (its stores are about 25 GB)");
  SyntheticModelSpec spec = moderate_spec();
  spec.router_correlation = o.router_correlation;
  prepare_model(o.model_dir, spec, false);
  const QuantRecipe recipe = QuantRecipe::parse(o.quant);
  const fs::path packed = cached_packed_model(o.model_dir, recipe, QuantizeOptions{}, {}, nullptr);
  std::fprintf(stderr, "packed store: %s\n", packed.string().c_str());

  CpuBackend backend(o.threads);
  std::unique_ptr<Model> model = Model::load(packed, backend, nullptr, /*verify=*/false, ExpertBinding::kMapped);
  const ModelConfig& c = model->config();
  const fs::path experts_bin = packed / "experts.bin";
  std::fprintf(stderr, "measuring DRAM and drive read bandwidth ...\n");
  // The same STREAM-style read pass as moe_bench_generate (best of 10), so bounds compare.
  const double dram = measure_memory_bandwidth(size_t{512} << 20, backend.threads(), 10).best_read_gbs() * 1e9;
  bool direct = false;
  const double nvme = measure_file_read_bandwidth(experts_bin, uint64_t{1} << 30, &direct);
  const uint64_t ram_bytes_per_token = model->weights().decode_bytes_per_token(c.experts_per_token);

  std::vector<Variant> variants;
  for (double b : o.budgets) variants.push_back({"full", b, OffloadOptions{}});
  OffloadOptions no_prefetch, no_admission, no_cache, naive;
  no_prefetch.prefetch_depth = 0;
  no_admission.prefetch_admission = false;  // every prediction read at once (the earlier behaviour)
  no_cache.cache = false;
  naive.cache = false;
  naive.prefetch_depth = 0;
  naive.lookahead = false;
  variants.push_back({"no prefetch", o.ablation_budget, no_prefetch});
  variants.push_back({"no admission", o.ablation_budget, no_admission});
  variants.push_back({"no cache", o.ablation_budget, no_cache});
  variants.push_back({"naive", o.ablation_budget, naive});

  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % 31000 + 3);
  const int64_t capacity = o.prompt_tokens + o.decode_tokens + 1;

  // The reference point: every expert resident (bound by the backend as in a run without
  // --host-mem), same prompt and steps, after the same warm-up.
  double resident_tps = 0;
  {
    CpuBackend rb(o.threads);
    std::unique_ptr<Model> rm = Model::load(packed, rb, nullptr, /*verify=*/false);
    Transformer t(c, rm->weights(), rm->layout(), rb, std::min<int64_t>(256, capacity));
    KvCache cache(rb, c, rm->layout(), capacity);
    GenerationOptions g;
    g.max_new_tokens = o.decode_tokens + 1;
    for (int i = 0; i <= o.warmup; ++i) {
      cache.clear();
      resident_tps = generate(t, cache, c.vocab_size, prompt, g).decode_tokens_per_second();
    }
    std::fprintf(stderr, "  resident (all experts in RAM): %.2f tok/s\n", resident_tps);
  }
  std::vector<Row> rows;
  for (Variant& v : variants) {
    v.o.reader = parse_reader_kind(o.reader);
    Transformer t(c, model->weights(), model->layout(), backend, std::min<int64_t>(256, capacity));
    KvCache cache(backend, c, model->layout(), capacity);
    auto off = ExpertOffload::create(*model, backend, t.max_step_tokens(), cache.bytes(),
                                     OffloadBudget{.host_mem = std::nullopt,
                                                   .expert_mem = std::nullopt,
                                                   .expert_fraction = v.budget,
                                                   .gpu_mem = std::nullopt,
                                                   .vram_fraction = std::nullopt},
                                     v.o);
    t.set_expert_provider(&off->experts());
    GenerationOptions g;
    g.max_new_tokens = o.decode_tokens + 1;
    // Warm-up generations fill the cache as serving would (the cache outlives a request); only
    // the timed one is counted.
    for (int i = 0; i < o.warmup; ++i) {
      cache.clear();
      generate(t, cache, c.vocab_size, prompt, g);
    }
    cache.clear();
    const size_t first_step = off->experts().stats().steps().size();
    const GenerationResult r = generate(t, cache, c.vocab_size, prompt, g);
    Row row{v, off->budget().slots, r.decode_tokens_per_second(), r.prompt_tokens_per_second(), {}, 0};
    const auto& steps = off->experts().stats().steps();
    for (size_t i = first_step; i < steps.size(); ++i)
      if (steps[i].tokens == 1) row.decode += steps[i];
    const double per = 1.0 / static_cast<double>(std::max<int64_t>(1, row.decode.tokens));
    const double t_ram = static_cast<double>(ram_bytes_per_token) / dram;
    const double t_nvme = static_cast<double>(row.decode.bytes_nvme) * per / nvme;
    row.bound_tps = 1.0 / std::max(t_ram, t_nvme);
    std::fprintf(stderr, "  %-12s %3.0f%%: %.2f tok/s\n", v.name.c_str(), 100 * v.budget, row.decode_tps);
    rows.push_back(row);
  }

  std::printf("CPU expert offloading, %s, %s; experts on %s (%s), DRAM %.1f GB/s, drive %.2f GB/s\n",
              c.summary().c_str(), recipe.spec().c_str(), experts_bin.string().c_str(),
              direct ? "O_DIRECT" : "buffered", dram / 1e9, nvme / 1e9);
  std::printf("%-12s %6s %5s %8s %7s %7s %7s %10s %9s %6s\n", "system", "budget", "slots", "tok/s", "hit", "recall",
              "prec.", "drive MB/t", "bound t/s", "eff.");
  std::printf("%-12s %6s %5s %8.2f %7s %7s %7s %10.1f %9.2f %5.0f%%\n", "resident", "all", "-", resident_tps, "-", "-",
              "-", 0.0, dram / static_cast<double>(ram_bytes_per_token),
              100 * resident_tps * static_cast<double>(ram_bytes_per_token) / dram);
  json jrows = json::array();
  for (const Row& r : rows) {
    const double per = 1.0 / static_cast<double>(std::max<int64_t>(1, r.decode.tokens));
    std::printf("%-12s %5.0f%% %5lld %8.2f %6.1f%% %6.1f%% %6.1f%% %10.1f %9.2f %5.0f%%\n", r.v.name.c_str(),
                100 * r.v.budget, static_cast<long long>(r.slots), r.decode_tps, 100 * r.decode.hit_rate(),
                100 * r.decode.prefetch.recall(), 100 * r.decode.prefetch.precision(),
                static_cast<double>(r.decode.bytes_nvme) * per / 1e6, r.bound_tps, 100 * r.decode_tps / r.bound_tps);
    jrows.push_back({{"system", r.v.name},
                     {"budget_fraction", r.v.budget},
                     {"slots", r.slots},
                     {"decode_tokens_per_s", r.decode_tps},
                     {"prefill_tokens_per_s", r.prefill_tps},
                     {"hit_rate", r.decode.hit_rate()},
                     {"prefetch_recall", r.decode.prefetch.recall()},
                     {"prefetch_precision", r.decode.prefetch.precision()},
                     {"drive_bytes_per_token", static_cast<double>(r.decode.bytes_nvme) * per},
                     {"ram_expert_bytes_per_token", static_cast<double>(r.decode.bytes_ram) * per},
                     {"wait_ms_per_token", 1e3 * r.decode.wait_seconds * per},
                     {"bound_tokens_per_s", r.bound_tps},
                     {"efficiency", r.decode_tps / r.bound_tps}});
  }
  std::printf(
      "hit rate, recall and precision over decode steps; random routers route almost uniformly, so hit\n"
      "rates are pessimistic against a trained model's. Bound: max(RAM bytes/token / DRAM bw, drive\n"
      "bytes/token / drive bw) with the drive bytes this row actually read.\n");
  const GitRevision git = git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const json record = {{"benchmark", "moe_bench_offload"},
                       {"schema_version", 1},
                       {"git", {{"commit", git.commit}, {"dirty", git.dirty}}},
                       {"date", utc_now_iso8601()},
                       {"backend", backend.name()},
                       {"machine", to_json(machine_info())},
                       {"model",
                        {{"shape", "mixtral-moderate"},
                         {"summary", c.summary()},
                         {"router_correlation", o.router_correlation},
                         {"quantization", recipe.spec()},
                         {"expert_bytes", model->weights().expert_bytes},
                         {"store", packed.string()}}},
                       {"prompt_tokens", o.prompt_tokens},
                       {"decode_tokens", o.decode_tokens},
                       {"warmup_generations", o.warmup},
                       {"resident_decode_tokens_per_s", resident_tps},
                       {"dram_read_bytes_per_s", dram},
                       {"drive_read_bytes_per_s", nvme},
                       {"o_direct", direct},
                       {"ram_bytes_per_token", ram_bytes_per_token},
                       {"rows", jrows},
                       {"note",
                        "random-weight model: routers route near-uniformly, so hit rates and recall are pessimistic; "
                        "shared VM: see the load averages in machine"}};
  const fs::path out = !o.out.empty() ? fs::path(o.out)
                                      : fs::path(MOE_SOURCE_DIR) / "benchmarks" / "results" /
                                            str_cat("cpu-offload-mixtral-moderate-", o.quant, ".json");
  write_record(out, record);
  std::printf("record written to %s\n", out.string().c_str());
  return 0;
}

// The GPU half (issue 6, 8b): per expert format, the resident model on the GPU, then the full
// system (VRAM cache + speculative prefetch + miss policy) at each VRAM budget, and the ablation at
// the first budget. Each row's bound is max(device bytes / HBM, PCIe bytes / link, drive bytes /
// drive, CPU-computed bytes / DRAM) per decoded token, with the bytes this row actually moved.
struct GpuRow {
  std::string format, system, budget;
  int64_t vram_slots = 0, host_slots = 0;
  double decode_tps = 0, prefill_tps = 0, bound_tps = 0;
  OffloadStepStats decode;
};

int run_cuda(const Options& o) {
  std::unique_ptr<Backend> gpu = make_backend(o.device, o.threads);
  std::fprintf(stderr, "measuring device, DRAM and drive read bandwidth ...\n");
  const double hbm = measure_bandwidth_for(o.device, size_t{1} << 30, 0, 3).best_read_gbs() * 1e9;
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  const double dram = measure_memory_bandwidth(size_t{512} << 20, threads, 10).best_read_gbs() * 1e9;
  const double pcie = o.pcie_gbs * 1e9;
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % 31000 + 3);
  const int64_t capacity = o.prompt_tokens + o.decode_tokens + 1;
  GenerationOptions g;
  g.max_new_tokens = o.decode_tokens + 1;

  std::vector<GpuRow> rows;
  json jformats = json::array();
  double nvme = 0;
  bool direct = false;
  for (const std::string& f : o.formats) {
    const QuantRecipe recipe = QuantRecipe::parse(str_cat("attn=q4,experts=", f));
    const fs::path packed = store_for(o, recipe);
    nvme = measure_file_read_bandwidth(packed / "experts.bin", uint64_t{1} << 30, &direct);
    double resident_tps = 0;
    uint64_t decode_bytes = 0;
    {
      std::unique_ptr<Model> rm = Model::load(packed, *gpu, nullptr, /*verify=*/false);
      decode_bytes = rm->weights().decode_bytes_per_token(rm->config().experts_per_token);
      Transformer t(rm->config(), rm->weights(), rm->layout(), *gpu, std::min<int64_t>(256, capacity));
      KvCache cache(*gpu, rm->config(), rm->layout(), capacity);
      for (int i = 0; i <= o.warmup; ++i) {
        cache.clear();
        resident_tps = generate(t, cache, rm->config().vocab_size, prompt, g).decode_tokens_per_second();
      }
    }
    rows.push_back(GpuRow{f, "resident", "all", 0, 0, resident_tps, 0, hbm / static_cast<double>(decode_bytes), {}});
    std::unique_ptr<Model> model = Model::load(packed, *gpu, nullptr, /*verify=*/false, ExpertBinding::kMapped);
    const ModelConfig& c = model->config();
    std::vector<std::pair<std::string, OffloadBudget>> budgets;
    OffloadBudget base;
    if (!o.host_mem.empty()) {
      base.host_mem = parse_mem_size(o.host_mem, "--host-mem");
    } else {
      base.expert_fraction = 1.0;
    }
    for (const std::string& m : o.gpu_mems) {
      OffloadBudget b = base;
      b.gpu_mem = parse_mem_size(m, "--gpu-mem");
      budgets.emplace_back(m, b);
    }
    if (o.gpu_mems.empty())
      for (double v : o.vram_fractions) {
        OffloadBudget b = base;
        b.vram_fraction = v;
        budgets.emplace_back(str_cat(static_cast<int>(100 * v), "% of experts"), b);
      }
    OffloadOptions full;
    full.miss_policy = parse_miss_policy(o.miss_policy);
    full.reader = parse_reader_kind(o.reader);
    full.link_gbs = o.pcie_gbs;
    full.cpu_gbs = dram / 1e9;
    full.device_gbs = hbm / 1e9;
    OffloadOptions no_prefetch = full, no_cache = full, naive = full;
    no_prefetch.prefetch_depth = 0;
    no_cache.cache = false;
    naive.cache = false;
    naive.prefetch_depth = 0;
    naive.lookahead = false;
    naive.miss_policy = MissPolicy::kFetch;
    std::vector<std::tuple<std::string, std::string, OffloadBudget, OffloadOptions>> variants;
    for (const auto& [name, b] : budgets) variants.emplace_back("full system", name, b, full);
    if (!budgets.empty()) {
      variants.emplace_back("no prefetch", budgets.front().first, budgets.front().second, no_prefetch);
      variants.emplace_back("no cache", budgets.front().first, budgets.front().second, no_cache);
      variants.emplace_back("naive", budgets.front().first, budgets.front().second, naive);
    }
    for (const auto& [system, budget_name, budget, opts] : variants) {
      Transformer t(c, model->weights(), model->layout(), *gpu, std::min<int64_t>(256, capacity));
      KvCache cache(*gpu, c, model->layout(), capacity);
      auto off = ExpertOffload::create(*model, *gpu, t.max_step_tokens(), cache.bytes(), budget, opts);
      t.set_expert_provider(&off->provider());
      for (int i = 0; i < o.warmup; ++i) {
        cache.clear();
        generate(t, cache, c.vocab_size, prompt, g);
      }
      cache.clear();
      const size_t first_step = off->stats().steps().size();
      const GenerationResult r = generate(t, cache, c.vocab_size, prompt, g);
      GpuRow row{f,
                 system,
                 budget_name,
                 off->vram_budget().slots,
                 off->budget().slots,
                 r.decode_tokens_per_second(),
                 r.prompt_tokens_per_second(),
                 0,
                 {}};
      const auto& steps = off->stats().steps();
      for (size_t i = first_step; i < steps.size(); ++i)
        if (steps[i].tokens == 1) row.decode += steps[i];
      const double per = 1.0 / static_cast<double>(std::max<int64_t>(1, row.decode.tokens));
      const double cpu_bytes = static_cast<double>(row.decode.bytes_ram - row.decode.bytes_h2d) * per;
      const double t_dev = (static_cast<double>(decode_bytes) - cpu_bytes) / hbm;
      const double t_link = static_cast<double>(row.decode.bytes_h2d) * per / pcie;
      const double t_nvme = static_cast<double>(row.decode.bytes_nvme) * per / nvme;
      const double t_cpu = cpu_bytes / dram;
      row.bound_tps = 1.0 / std::max({t_dev, t_link, t_nvme, t_cpu});
      std::fprintf(stderr, "  %s %-12s %s: %.2f tok/s\n", f.c_str(), system.c_str(), budget_name.c_str(),
                   row.decode_tps);
      rows.push_back(row);
    }
    jformats.push_back({{"format", f},
                        {"recipe", recipe.spec()},
                        {"expert_bytes", model->weights().expert_bytes},
                        {"decode_bytes_per_token", decode_bytes}});
  }

  std::printf("GPU expert offloading on %s; HBM %.0f GB/s, PCIe %.1f GB/s (given), DRAM %.1f GB/s, drive %.2f GB/s%s\n",
              gpu->name().c_str(), hbm / 1e9, pcie / 1e9, dram / 1e9, nvme / 1e9, direct ? " (O_DIRECT)" : "");
  std::printf("%-4s %-12s %-14s %5s %5s %8s %7s %7s %7s %8s %8s %9s %6s\n", "fmt", "system", "VRAM budget", "vram",
              "ram", "tok/s", "hit", "recall", "cpu", "PCIe MB", "NVMe MB", "bound t/s", "eff.");
  json jrows = json::array();
  for (const GpuRow& r : rows) {
    const double per = 1.0 / static_cast<double>(std::max<int64_t>(1, r.decode.tokens));
    std::printf("%-4s %-12s %-14s %5lld %5lld %8.2f %6.1f%% %6.1f%% %7llu %8.2f %8.2f %9.2f %5.0f%%\n",
                r.format.c_str(), r.system.c_str(), r.budget.c_str(), static_cast<long long>(r.vram_slots),
                static_cast<long long>(r.host_slots), r.decode_tps, 100 * r.decode.hit_rate(),
                100 * r.decode.prefetch.recall(), static_cast<unsigned long long>(r.decode.host_computed),
                static_cast<double>(r.decode.bytes_h2d) * per / 1e6,
                static_cast<double>(r.decode.bytes_nvme) * per / 1e6, r.bound_tps, 100 * r.decode_tps / r.bound_tps);
    jrows.push_back({{"format", r.format},
                     {"system", r.system},
                     {"vram_budget", r.budget},
                     {"vram_slots", r.vram_slots},
                     {"ram_slots", r.host_slots},
                     {"decode_tokens_per_s", r.decode_tps},
                     {"prefill_tokens_per_s", r.prefill_tps},
                     {"hit_rate", r.decode.hit_rate()},
                     {"prefetch_recall", r.decode.prefetch.recall()},
                     {"prefetch_precision", r.decode.prefetch.precision()},
                     {"cpu_computed_experts", r.decode.host_computed},
                     {"h2d_bytes_per_token", static_cast<double>(r.decode.bytes_h2d) * per},
                     {"drive_bytes_per_token", static_cast<double>(r.decode.bytes_nvme) * per},
                     {"vram_expert_bytes_per_token", static_cast<double>(r.decode.bytes_vram) * per},
                     {"bound_tokens_per_s", r.bound_tps},
                     {"efficiency", r.decode_tps / r.bound_tps}});
  }
  const GitRevision git = git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const json record = {
      {"benchmark", "moe_bench_offload"},
      {"schema_version", 1},
      {"git", {{"commit", git.commit}, {"dirty", git.dirty}}},
      {"date", utc_now_iso8601()},
      {"backend", gpu->name()},
      {"machine", to_json(machine_info())},
      {"model", {{"shape", "mixtral-moderate"}, {"formats", jformats}}},
      {"prompt_tokens", o.prompt_tokens},
      {"decode_tokens", o.decode_tokens},
      {"warmup_generations", o.warmup},
      {"hbm_read_bytes_per_s", hbm},
      {"pcie_bytes_per_s_given", pcie},
      {"dram_read_bytes_per_s", dram},
      {"drive_read_bytes_per_s", nvme},
      {"o_direct", direct},
      {"miss_policy", o.miss_policy},
      {"rows", jrows},
      {"note", "random-weight model: routers route near-uniformly, so hit rates and recall are pessimistic"}};
  const fs::path out = !o.out.empty() ? fs::path(o.out)
                                      : fs::path(MOE_SOURCE_DIR) / "benchmarks" / "results" /
                                            str_cat("cuda-offload-mixtral-moderate-", device_kind(o.device), ".json");
  write_record(out, record);
  std::printf("record written to %s\n", out.string().c_str());
  return 0;
}

}  // namespace
}  // namespace moe::bench

int main(int argc, char** argv) {
  moe::bench::Options o;
  CLI::App app{"CPU expert-offloading benchmark: RAM budgets and the ablation table"};
  app.add_option("--quant", o.quant, "Recipe of the packed store")->capture_default_str();
  app.add_option("--shape", o.shape,
                 "moderate (the benchmark model) or mixtral-8x7b (GPU: random stores in Mixtral-8x7B's shapes, written "
                 "directly under --store-root, about 25 GB per recipe)")
      ->capture_default_str();
  app.add_option("--store-root", o.store_root, "Where the mixtral-8x7b stores are written (one directory per recipe)")
      ->capture_default_str();
  app.add_option("--router-correlation", o.router_correlation,
                 "CPU: routers correlated across layers, as trained models' are (layer l's router = c * the first\n"
                 "layer's + sqrt(1 - c^2) * its own); 0 = independent. Its own model directory by default")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--model-dir", o.model_dir, "The random Mixtral-shaped model (written when absent)")
      ->capture_default_str();
  app.add_option("--threads,-t", o.threads, "CPU threads");
  app.add_option("--prompt-tokens", o.prompt_tokens, "Prompt length")->capture_default_str();
  app.add_option("--decode-tokens", o.decode_tokens, "Decode steps timed")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed generations per row first (the expert cache stays warm, as in serving)")
      ->capture_default_str();
  app.add_option("--budgets", o.budgets, "RAM budgets as fractions of the expert slots")->capture_default_str();
  app.add_option("--ablation-budget", o.ablation_budget, "Budget of the ablation rows")->capture_default_str();
  app.add_option("--expert-reader", o.reader, "auto, uring or pread")->capture_default_str();
  app.add_option("--out,-o", o.out, "JSON record path");
  app.add_option("--device", o.device, "cpu (the RAM tier) or cuda / cuda:N (VRAM over RAM over the drive)")
      ->capture_default_str();
  app.add_option("--gpu-mem", o.gpu_mems, "GPU: VRAM budgets (e.g. 12G 16G); default: --vram-fractions");
  app.add_option("--vram-fractions", o.vram_fractions, "GPU: fractions of the experts with a VRAM slot")
      ->capture_default_str();
  app.add_option("--formats", o.formats, "GPU: expert formats (attention q4)")->capture_default_str();
  app.add_option("--host-mem", o.host_mem, "GPU: RAM tier budget (default: every expert in RAM)");
  app.add_option("--pcie-bw", o.pcie_gbs, "GPU: host -> device GB/s for the bound and the cost model")
      ->capture_default_str();
  app.add_option("--miss-policy", o.miss_policy, "GPU: fetch, cpu or auto")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  // A correlated-router model is another model: its own directory unless one was given.
  if (o.router_correlation > 0 && app.count("--model-dir") == 0)
    o.model_dir += "-corr" + std::to_string(static_cast<int>(o.router_correlation * 100 + 0.5));
  try {
    return o.device == "cpu" ? moe::bench::run(o) : moe::bench::run_cuda(o);
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe_bench_offload: error: %s\n", e.what());
    return 1;
  }
}
