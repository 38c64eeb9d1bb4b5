// `moe plan`: what offloading would do with a model and budgets, without loading any weight:
// memory per component, which tier holds what, the offload ratio and the tokens/s bound from
// measured (or given) bandwidths. See docs/offloading.md.
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "launch/commands.h"
#include "launch/engine.h"
#include "runtime/core/error.h"
#include "runtime/io/packed_store.h"
#include "runtime/model/config.h"
#include "runtime/model/gguf_source.h"
#include "runtime/offload/bandwidth.h"
#include "runtime/offload/budget.h"
#include "runtime/offload/plan.h"

namespace moe::cli {
namespace {

struct PlanOptions {
  std::string model_dir, quant, gpu_mem, host_mem = "auto";
  int64_t context = 4096, prefill_chunk = 256;
  double hbm_gbs = 0, pcie_gbs = 0, dram_gbs = 0, nvme_gbs = 0;
  std::string nvme_file;
  bool no_measure = false;
};

DType source_dtype(const std::filesystem::path& config_json) {
  std::ifstream in(config_json);
  if (!in.good()) return DType::kBF16;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  const std::string d = j.is_object() && j.contains("torch_dtype") && j["torch_dtype"].is_string()
                            ? j["torch_dtype"].get<std::string>()
                            : "bfloat16";
  if (d == "float32") return DType::kF32;
  if (d == "float16") return DType::kF16;
  return DType::kBF16;
}

int plan(const PlanOptions& o) {
  const std::filesystem::path dir = o.model_dir;
  ModelConfig c;
  std::string recipe_spec = o.quant;
  std::filesystem::path experts_bin;
  std::map<TensorKind, double> file_bytes_per_weight;
  if (is_gguf_model(dir)) {
    // The file's own block types: bytes per weight of each kind, from its tensors.
    auto file = std::make_shared<const GgufFile>(GgufFile::open(dir));
    c = gguf_model_config(*file);
    const GgufSource src(file, c);
    std::map<TensorKind, std::pair<double, double>> sums;  // bytes, weights
    for (const std::string& name : src.tensor_names()) {
      const TensorView v = src.tensor(name);
      auto& [b, n] = sums[classify_tensor(name, *c.arch)];
      b += static_cast<double>(v.nbytes);
      n += static_cast<double>(v.numel());
    }
    for (const auto& [kind, s] : sums)
      if (s.second > 0) file_bytes_per_weight[kind] = s.first / s.second;
    if (recipe_spec.empty()) recipe_spec = "attn=keep";
    experts_bin = dir;
  } else if (PackedStore::is_packed(dir)) {
    const PackedStore store = PackedStore::open(dir, /*verify=*/false);  // maps, reads no weight
    c = parse_model_config(store.source_config().dump(), dir / "manifest.json");
    if (recipe_spec.empty()) recipe_spec = store.recipe();
    experts_bin = dir / "experts.bin";
  } else {
    c = load_model_config(dir);
    if (recipe_spec.empty()) recipe_spec = "attn=keep";
  }
  const QuantRecipe recipe = QuantRecipe::parse(recipe_spec);
  PlanInputs in;
  in.context = o.context;
  in.prefill_chunk = o.prefill_chunk;
  in.source_dtype = source_dtype(dir / "config.json");
  in.stored_bytes_per_weight = file_bytes_per_weight;
  if (!o.gpu_mem.empty()) in.gpu_mem = parse_mem_size(o.gpu_mem, "--gpu-mem");
  in.host_mem = o.host_mem == "auto" ? default_host_budget() : parse_mem_size(o.host_mem, "--host-mem");
  in.bw = Bandwidths{
      .device = o.hbm_gbs * 1e9, .link = o.pcie_gbs * 1e9, .dram = o.dram_gbs * 1e9, .nvme = o.nvme_gbs * 1e9};
  std::string measured;
  if (!o.no_measure) {
    if (in.bw.dram <= 0) {
      in.bw.dram = measure_dram_read_bandwidth();
      measured += str_cat(" DRAM read ", static_cast<int64_t>(in.bw.dram / 1e8) / 10.0, " GB/s;");
    }
    const std::filesystem::path f = o.nvme_file.empty() ? experts_bin : std::filesystem::path(o.nvme_file);
    if (in.bw.nvme <= 0 && !f.empty() && std::filesystem::exists(f)) {
      bool direct = false;
      in.bw.nvme = measure_file_read_bandwidth(f, uint64_t{1} << 30, &direct);
      measured += str_cat(" ", f.filename().string(), " read ", static_cast<int64_t>(in.bw.nvme / 1e7) / 100.0, " GB/s",
                          direct ? " (O_DIRECT)" : " (buffered: page cache may inflate it)", ";");
    }
  }
  const MemoryPlan p = make_plan(c, recipe, in);
  std::printf("model            %s\nrecipe           %s\ncontext          %lld positions, prefill chunk %lld\n",
              c.summary().c_str(), file_bytes_per_weight.empty() ? recipe.spec().c_str() : "as the GGUF file stores it",
              static_cast<long long>(o.context), static_cast<long long>(o.prefill_chunk));
  if (!measured.empty()) std::printf("measured        %s\n", measured.c_str());
  std::printf("%s", format_plan(p, in).c_str());
  return 0;
}

}  // namespace

Action add_plan_command(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* cmd =
      app.add_subcommand("plan", "Memory per component, tiers and the tokens/s bound, without loading weights");
  cmd->add_option("--model,-m", o->model_dir, "Model: a Hugging Face directory, a packed store or a GGUF file")
      ->required()
      ->check(model_path_check());
  cmd->add_option("--quant,-q", o->quant, "Recipe (default: the store's own, or keep for a Hugging Face directory)");
  cmd->add_option("--gpu-mem", o->gpu_mem, "VRAM budget: plan a GPU run (e.g. 16G)");
  cmd->add_option("--host-mem", o->host_mem, "RAM budget (e.g. 24G; auto = 90% of available)")->capture_default_str();
  cmd->add_option("--ctx-size,-c", o->context, "KV cache positions")->capture_default_str();
  cmd->add_option("--prefill-chunk", o->prefill_chunk, "Prompt tokens per forward pass")->capture_default_str();
  cmd->add_option("--hbm-bw", o->hbm_gbs, "GPU memory bandwidth, GB/s (e.g. 3350 for an H100 SXM)");
  cmd->add_option("--pcie-bw", o->pcie_gbs, "Host->device bandwidth, GB/s (Gen4 x16 about 25)");
  cmd->add_option("--dram-bw", o->dram_gbs, "Host DRAM read bandwidth, GB/s (default: measured)");
  cmd->add_option("--nvme-bw", o->nvme_gbs, "Drive read bandwidth, GB/s (default: measured on experts.bin)");
  cmd->add_option("--nvme-file", o->nvme_file, "File to measure the drive with (default: the store's experts.bin)");
  cmd->add_flag("--no-measure", o->no_measure, "Measure nothing; use only the bandwidths given");
  return [o] { return plan(*o); };
}

}  // namespace moe::cli
