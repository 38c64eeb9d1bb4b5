// moe_bench_generate: prefill and decode throughput of the CPU backend on a random-weight MoE
// model in a real shape, beside the memory-bandwidth bound of batch-1 decode measured on the
// same machine in the same run. Prints a table and writes one JSON record.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/bench_model.h"
#include "benchmarks/bench_record.h"
#include "benchmarks/busy_load.h"
#include "benchmarks/device_bandwidth.h"
#include "benchmarks/memory_bandwidth.h"
#include "benchmarks/model_cost.h"
#include "kernels/common/thread_pool.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/engine/generator.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/transformer.h"
#include "runtime/io/gguf.h"
#include "runtime/model/config.h"
#include "runtime/model/gguf_source.h"
#include "runtime/model/model.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/quant/quant_cache.h"

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
  std::string arch = "mixtral";
  int64_t layers = 8, hidden = 1024, experts = 8, top_k = 2, expert_width = 3584;
  int64_t heads = 16, kv_heads = 4, head_dim = 0, vocab = 32000;
  int64_t shared_width = 0, dense_width = 0, sparse_step = 1;
  std::string dtype = "bf16";
  std::string quant;  // recipe: benchmark the packed quantized model (cached conversion)
  std::string quantizer = "hqq";
  uint64_t seed = 0;
  std::string model_dir;
  std::string gguf;  // benchmark this GGUF file instead of the random-weight model
  bool regenerate = false;
  int threads = 0;
  std::string device = "cpu";  // cpu, cuda, cuda:N
  int64_t prompt_tokens = 128, decode_tokens = 32, prefill_chunk = 256;
  int reps = 3, warmup = 1;
  int contend = 0;  // busy processes beside a second set of reps
  int64_t bw_mib = 512;
  int bw_reps = 5;
  std::string out;
  bool no_record = false;
};

const Options kDefaults;

DType parse_dtype(const std::string& s) {
  if (s == "bf16") return DType::kBF16;
  if (s == "f16") return DType::kF16;
  if (s == "f32") return DType::kF32;
  fail("--dtype ", s, ": expected bf16, f16 or f32");
}

bool default_shape(const Options& o) {
  const Options& d = kDefaults;
  return o.arch == d.arch && o.layers == d.layers && o.hidden == d.hidden && o.experts == d.experts &&
         o.top_k == d.top_k && o.expert_width == d.expert_width && o.heads == d.heads && o.kv_heads == d.kv_heads &&
         o.head_dim == d.head_dim && o.vocab == d.vocab;
}

// "mixtral-moderate" for the defaults, else every dimension spelled out.
std::string shape_name(const Options& o) {
  if (default_shape(o)) return "mixtral-moderate";
  std::string arch = o.arch;
  if (arch.size() > 12 && arch.ends_with("ForCausalLM")) arch = arch.substr(0, arch.size() - 11);
  std::transform(arch.begin(), arch.end(), arch.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return str_cat(arch, "-l", o.layers, "-h", o.hidden, "-a", o.heads, "x", o.kv_heads,
                 o.head_dim ? str_cat("x", o.head_dim) : "", "-e", o.experts, "k", o.top_k, "-i", o.expert_width, "-v",
                 o.vocab);
}

SyntheticModelSpec make_spec(const Options& o) {
  SyntheticModelSpec s = tiny_model_spec(o.arch);  // architecture-specific flags (biases, norms)
  s.vocab_size = o.vocab;
  s.hidden_size = o.hidden;
  s.num_layers = o.layers;
  s.num_heads = o.heads;
  s.num_kv_heads = o.kv_heads;
  s.head_dim = o.head_dim;
  s.num_experts = o.experts;
  s.experts_per_token = o.top_k;
  s.expert_intermediate = o.expert_width;
  s.shared_intermediate = o.shared_width > 0 ? o.shared_width : o.expert_width;
  s.dense_intermediate = o.dense_width > 0 ? o.dense_width : 4 * o.expert_width;
  s.decoder_sparse_step = o.sparse_step;
  s.dtype = parse_dtype(o.dtype);
  s.seed = o.seed;
  s.max_position_embeddings = std::max<int64_t>(4096, o.prompt_tokens + o.decode_tokens + 1);
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct RepFigures {
  std::vector<double> prompt_tps, decode_tps, ttft, prefill_s, decode_s;
  int64_t decode_steps = 0;
};

json reps_json(const std::vector<double>& v) {
  return {{"reps", v}, {"median", median(v)}};
}

int run(const Options& o) {
  MOE_CHECK(o.prompt_tokens > 0 && o.decode_tokens > 0, "--prompt-tokens and --decode-tokens must be positive");
  MOE_CHECK(o.reps > 0 && o.warmup >= 0 && o.bw_reps > 0 && o.bw_mib > 0 && o.prefill_chunk > 0,
            "--reps, --bw-reps, --bw-mib and --prefill-chunk must be positive, --warmup >= 0");
  MOE_CHECK(o.gguf.empty() || o.quant.empty(), "--gguf and --quant exclude each other: a GGUF file keeps its types");
  const bool from_gguf = !o.gguf.empty();
  const SyntheticModelSpec spec = make_spec(o);
  // A GGUF file: its stem names the shape and format ("mixtral-moderate.Q4_K_M.gguf").
  const std::string shape = from_gguf ? fs::path(o.gguf).stem().string() : shape_name(o);
  const fs::path dir = from_gguf ? fs::path(o.gguf)
                       : !o.model_dir.empty()
                           ? fs::path(o.model_dir)
                           : fs::path(str_cat("/tmp/moe-bench-", shape, o.dtype == "bf16" ? "" : "-" + o.dtype));
  const fs::path out = !o.out.empty() ? fs::path(o.out)
                                      : fs::path(MOE_SOURCE_DIR) / "benchmarks" / "results" /
                                            (from_gguf ? str_cat(device_kind(o.device), "-gguf-", shape, ".json")
                                                       : str_cat(device_kind(o.device), "-", shape, "-",
                                                                 o.quant.empty() ? o.dtype : o.quant, ".json"));
  const GitRevision git = git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const std::string date = utc_now_iso8601();
  const MachineInfo machine = machine_info();

  const PreparedModel prepared = from_gguf ? PreparedModel{} : prepare_model(dir, spec, o.regenerate);
  // With a recipe: the packed store of the same model (converted once, then cached).
  fs::path load_dir = dir;
  std::string recipe_spec;
  double convert_seconds = 0;
  if (!o.quant.empty()) {
    const QuantRecipe recipe = QuantRecipe::parse(o.quant);
    QuantizeOptions qopt;
    qopt.quantizer = o.quantizer == "rtn" ? Quantizer::kRtn : Quantizer::kHqq;
    MOE_CHECK(o.quantizer == "rtn" || o.quantizer == "hqq", "--quantizer must be hqq or rtn");
    const auto t_convert = std::chrono::steady_clock::now();
    bool converted = false;
    load_dir = cached_packed_model(dir, recipe, qopt, {}, &converted);
    if (converted) convert_seconds = seconds_since(t_convert);
    recipe_spec = recipe.spec();
    std::fprintf(stderr, "quantized model (%s, %s): %s%s\n", recipe_spec.c_str(), o.quantizer.c_str(),
                 load_dir.string().c_str(), converted ? " (converted now)" : " (cached)");
  }

  // The backend fixes the OpenMP thread count; the bandwidth passes use the same count.
  // --device cuda: the bandwidth is the device's (HBM), measured after the backend made it current.
  const std::unique_ptr<Backend> backend_owner = make_backend(o.device, o.threads);
  Backend& backend = *backend_owner;
  const auto* cpu_backend = dynamic_cast<const CpuBackend*>(&backend);
  const int threads = cpu_backend != nullptr ? cpu_backend->threads() : 0;
  const size_t bw_bytes = static_cast<size_t>(o.bw_mib) << 20;
  std::fprintf(stderr, "measuring memory bandwidth (%d threads, 2 x %lld MiB) ...\n", threads,
               static_cast<long long>(o.bw_mib));
  BandwidthResult bw = measure_bandwidth_for(o.device, bw_bytes, threads, o.bw_reps);

  // Load as `moe run` does: map and bind the weights, allocate activations and the KV cache.
  const int64_t capacity = o.prompt_tokens + o.decode_tokens + 1;
  const auto t_load = std::chrono::steady_clock::now();
  std::unique_ptr<Model> model = Model::load(load_dir, backend);
  const ModelConfig& c = model->config();
  Transformer transformer(c, model->weights(), model->layout(), backend, std::min(o.prefill_chunk, capacity));
  KvCache cache(backend, c, model->layout(), capacity);
  const double load_seconds = seconds_since(t_load);

  const DType wdtype = model->weights().lm_head.dtype;
  // GGUF: the stored bytes per ggml type (what a decoded token reads is counted from the bound
  // tensors below, as for a packed store).
  std::string gguf_types;
  json gguf_types_json = json::object();
  if (const GgufSource* g = model->gguf(); g != nullptr) {
    std::map<std::string, std::pair<int64_t, uint64_t>> by_type;  // name -> (tensors, bytes)
    for (const GgufTensorInfo& t : g->file().tensors()) {
      const auto info = ggml_type_info(t.ggml_type);
      auto& e = by_type[info ? std::string(info->name) : str_cat("type ", t.ggml_type)];
      e.first += 1;
      e.second += t.nbytes;
    }
    for (const auto& [name, e] : by_type) {
      gguf_types += str_cat(gguf_types.empty() ? "" : ", ", name, " ", e.first, " (", e.second / 1000000, " MB)");
      gguf_types_json[name] = {{"tensors", e.first}, {"bytes", e.second}};
    }
  }
  const bool packed = !o.quant.empty() || from_gguf;  // stored sizes are not the config's dtype
  // Parameter counts are what the cost is for; a quantized LM head (GGUF) has no per-parameter dtype.
  const ModelCost cost = model_cost(c, model->weights().lm_head.quant ? DType::kBF16 : wdtype);
  const uint64_t bound_bytes = model->weights().bytes;
  const uint64_t formula_bytes = static_cast<uint64_t>(cost.params_total) * static_cast<uint64_t>(cost.bytes_per_param);
  // Bytes a decoded token reads, from the bound tensors' storage (quantized ones at packed size).
  const uint64_t weight_bytes_per_token = model->weights().decode_bytes_per_token(c.experts_per_token);
  if (!packed && weight_bytes_per_token != cost.weight_bytes_per_token)
    std::fprintf(stderr, "warning: bytes per token from the config (%llu) and from the bound weights (%llu) differ\n",
                 static_cast<unsigned long long>(cost.weight_bytes_per_token),
                 static_cast<unsigned long long>(weight_bytes_per_token));
  if (!packed && formula_bytes != bound_bytes)
    std::fprintf(stderr,
                 "warning: parameter count from the config (%lld x %lld bytes = %llu) differs from the bound "
                 "weights (%llu bytes); bytes per token may be off\n",
                 static_cast<long long>(cost.params_total), static_cast<long long>(cost.bytes_per_param),
                 static_cast<unsigned long long>(formula_bytes), static_cast<unsigned long long>(bound_bytes));

  std::mt19937_64 rng(o.seed + 1);
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(c.vocab_size));
  GenerationOptions g;
  g.max_new_tokens = o.decode_tokens + 1;  // the first new token comes from the prompt forward
  // Greedy (default SamplingParams) and no stop ids: --ignore-eos, every run the same length.

  RepFigures f, warm;  // warm-up runs are recorded too: the first one pays the weights' page faults
  for (int i = 0; i < o.warmup; ++i) {
    const GenerationResult r = generate(transformer, cache, c.vocab_size, prompt, g);
    warm.prompt_tps.push_back(r.prompt_tokens_per_second());
    warm.decode_tps.push_back(r.decode_tokens_per_second());
    std::fprintf(stderr, "warm-up %d/%d: prompt %.1f tok/s, decode %.2f tok/s\n", i + 1, o.warmup,
                 r.prompt_tokens_per_second(), r.decode_tokens_per_second());
  }
  for (int i = 0; i < o.reps; ++i) {
    const GenerationResult r = generate(transformer, cache, c.vocab_size, prompt, g);
    f.prompt_tps.push_back(r.prompt_tokens_per_second());
    f.decode_tps.push_back(r.decode_tokens_per_second());
    f.ttft.push_back(r.first_token_seconds);
    f.prefill_s.push_back(r.prefill_seconds);
    f.decode_s.push_back(r.decode_seconds);
    f.decode_steps = r.decode_steps;
    std::fprintf(stderr, "rep %d/%d: prompt %.1f tok/s, ttft %.3f s, decode %.2f tok/s\n", i + 1, o.reps,
                 r.prompt_tokens_per_second(), r.first_token_seconds, r.decode_tokens_per_second());
  }

  // Contention: the same reps again beside `contend` spinning processes.
  RepFigures busy;
  const uint64_t preempted_before = cpu::preempted_waits();
  if (o.contend > 0) {
    BusyLoad load;
    load.start(o.contend);
    std::fprintf(stderr, "beside %d busy processes:\n", o.contend);
    for (int i = 0; i < o.reps; ++i) {
      const GenerationResult r = generate(transformer, cache, c.vocab_size, prompt, g);
      busy.prompt_tps.push_back(r.prompt_tokens_per_second());
      busy.decode_tps.push_back(r.decode_tokens_per_second());
      std::fprintf(stderr, "contended rep %d/%d: prompt %.1f tok/s, decode %.2f tok/s\n", i + 1, o.reps,
                   r.prompt_tokens_per_second(), r.decode_tokens_per_second());
    }
    load.stop();
  }
  const uint64_t preempted = cpu::preempted_waits() - preempted_before;

  // Bandwidth once more after the runs: the machine is shared, keep the best of both phases.
  std::fprintf(stderr, "measuring memory bandwidth again ...\n");
  const BandwidthResult bw_after = measure_bandwidth_for(o.device, bw_bytes, threads, o.bw_reps);
  const size_t bw_before_reps = bw.copy_gbs.size();
  bw.copy_gbs.insert(bw.copy_gbs.end(), bw_after.copy_gbs.begin(), bw_after.copy_gbs.end());
  bw.read_gbs.insert(bw.read_gbs.end(), bw_after.read_gbs.begin(), bw_after.read_gbs.end());
  const std::string load_at_end = load_average();

  // ---- derived figures ----
  // Decode step i (1..S) attends to prompt + i positions: mean context prompt + (S + 1) / 2.
  const auto steps = static_cast<double>(f.decode_steps);
  const double mean_context = static_cast<double>(o.prompt_tokens) + (steps + 1.0) / 2.0;
  const uint64_t kv_bytes = kv_bytes_read(c, mean_context);
  const double bytes_per_token = static_cast<double>(weight_bytes_per_token + kv_bytes);
  const double copy_gbs = bw.best_copy_gbs(), read_gbs = bw.best_read_gbs();
  const double bound_copy = copy_gbs * 1e9 / bytes_per_token;
  const double bound_read = read_gbs * 1e9 / bytes_per_token;
  const double decode_tps = median(f.decode_tps), prompt_tps = median(f.prompt_tps);
  const double prompt_flops = prefill_flops(c, cost, o.prompt_tokens);
  const double prefill_gflops = prompt_flops / median(f.prefill_s) / 1e9;
  const double flops_per_token_nominal = 2.0 * static_cast<double>(cost.params_active);

  // ---- table ----
  std::printf("moe_bench_generate   commit %s%s   %s\n", git.commit.c_str(), git.dirty ? " (dirty)" : "", date.c_str());
  std::printf("machine   %s, %s, %d logical cores, %.1f GiB RAM; %d threads; load average %s at start, %s at end\n",
              machine.hostname.c_str(), machine.cpu_model.c_str(), machine.logical_cores, machine.ram_gib, threads,
              machine.load_average.c_str(), load_at_end.c_str());
  std::printf("model     %s, %s weights%s\n", c.summary().c_str(),
              from_gguf         ? "GGUF"
              : o.quant.empty() ? std::string(dtype_name(wdtype)).c_str()
                                : "quantized",
              from_gguf ? str_cat(": ", gguf_types).c_str()
              : o.quant.empty()
                  ? ""
                  : str_cat(", quantized ", recipe_spec, " (", o.quantizer, "): ", model->weights().bytes / 1e6, " MB")
                        .c_str());
  std::printf("          %s (%s)\n", dir.string().c_str(),
              from_gguf ? "as given"
              : prepared.written
                  ? str_cat("written in ", static_cast<int64_t>(prepared.write_seconds * 10) / 10.0, " s").c_str()
                  : "reused");
  std::printf("params    %.1f M total (%.3f GB), %.1f M active per token\n", cost.params_total / 1e6,
              static_cast<double>(bound_bytes) / 1e9, cost.params_active / 1e6);
  std::printf("bytes/tok %.1f MB weights + %.2f MB KV cache (f32, mean context %.1f) = %.1f MB per decoded token\n",
              static_cast<double>(weight_bytes_per_token) / 1e6, static_cast<double>(kv_bytes) / 1e6, mean_context,
              bytes_per_token / 1e6);
  std::printf("bandwidth copy %.2f GB/s (read + write bytes), read %.2f GB/s; best of %zu, 2 x %lld MiB, %d threads\n",
              copy_gbs, read_gbs, bw.copy_gbs.size(), static_cast<long long>(o.bw_mib), threads);
  std::printf("workload  prompt %lld random ids, %lld greedy decode steps (EOS ignored), %d reps after %d warm-up\n\n",
              static_cast<long long>(o.prompt_tokens), static_cast<long long>(f.decode_steps), o.reps, o.warmup);
  std::printf("%-16s", "");
  for (int i = 0; i < o.reps; ++i) std::printf("%10s", str_cat("rep ", i + 1).c_str());
  std::printf("%10s\n", "median");
  auto row = [&](const char* name, const std::vector<double>& v, const char* fmt) {
    std::printf("%-16s", name);
    for (double x : v) std::printf(fmt, x);
    std::printf(fmt, median(v));
    std::printf("\n");
  };
  row("prompt tok/s", f.prompt_tps, "%10.1f");
  row("ttft s", f.ttft, "%10.3f");
  row("decode tok/s", f.decode_tps, "%10.2f");
  if (o.contend > 0) {
    row("busy prompt t/s", busy.prompt_tps, "%10.1f");
    row("busy decode t/s", busy.decode_tps, "%10.2f");
  }
  std::printf("load s          %10.4f  (map + bind weights, allocate activations and KV cache)\n\n", load_seconds);
  const char* sched = cpu::scheduler() == cpu::Scheduler::kPool ? "pool" : "openmp";
  const double contended_ratio = o.contend > 0 ? median(busy.decode_tps) / median(f.decode_tps) : 0.0;
  if (o.contend > 0)
    std::printf(
        "contention  decode %.2f tok/s quiet, %.2f beside %d busy processes (CPU threads: %s): %.0f%% of quiet "
        "(target >= %.0f%% = 1 / (1 + load)); %llu waits on a preempted thread\n",
        median(f.decode_tps), median(busy.decode_tps), o.contend, sched, 100.0 * contended_ratio,
        100.0 / (1.0 + o.contend), static_cast<unsigned long long>(preempted));
  std::printf(
      "decode   %.2f tok/s | bound from copy bw %.2f tok/s -> efficiency %.1f%% | from read bw %.2f tok/s -> "
      "efficiency %.1f%%\n",
      decode_tps, bound_copy, 100.0 * decode_tps / bound_copy, bound_read, 100.0 * decode_tps / bound_read);
  std::printf(
      "prefill  %.1f tok/s, %.3f GFLOP per token (2 x active params), %.2f GFLOP per prompt -> %.2f GFLOP/s "
      "achieved\n",
      prompt_tps, flops_per_token_nominal / 1e9, prompt_flops / 1e9, prefill_gflops);
  std::printf(
      "note     random routers route near-uniformly; a trained router's skew does not change batch-1 "
      "decode bytes (top-k experts per layer either way)\n");

  if (o.no_record) return 0;
  // ---- record ----
  json machine_json = to_json(machine);
  machine_json["threads"] = threads;
  machine_json["cpu_threads_scheduler"] = sched;
  machine_json["load_average_at_end"] = load_at_end;
  json record = {
      {"benchmark", "moe_bench_generate"},
      {"schema_version", 1},
      {"git", {{"commit", git.commit}, {"dirty", git.dirty}}},
      {"date", date},
      {"backend", backend.name()},
      {"machine", machine_json},
      {"model",
       {{"shape", shape},
        {"summary", c.summary()},
        {"architecture", std::string(c.arch->hf_name)},
        {"layers", c.num_layers},
        {"hidden", c.hidden_size},
        {"heads", c.num_heads},
        {"kv_heads", c.num_kv_heads},
        {"head_dim", c.head_dim},
        {"experts", c.num_experts},
        {"top_k", c.experts_per_token},
        {"expert_width", c.expert_intermediate},
        {"vocab", c.vocab_size},
        {"dtype", from_gguf         ? std::string("gguf")
                  : o.quant.empty() ? std::string(dtype_name(wdtype))
                                    : std::string("quantized")},
        {"quantization", from_gguf         ? std::string("gguf (types as stored)")
                         : o.quant.empty() ? std::string("none")
                                           : recipe_spec},
        {"quantizer", o.quant.empty() ? std::string("none") : o.quantizer},
        {"gguf_types", gguf_types_json},
        {"weights_bytes", model->weights().bytes},
        {"expert_bytes", model->weights().expert_bytes},
        {"loaded_from", load_dir.string()},
        {"convert_seconds", convert_seconds},
        {"random_weights_seed", from_gguf ? json(nullptr) : json(o.seed)},
        {"dir", dir.string()},
        {"written_this_run", prepared.written},
        {"write_seconds", prepared.write_seconds}}},
      {"params",
       {{"total", cost.params_total},
        {"active_per_token", cost.params_active},
        {"active_matmul_per_token", cost.params_active_matmul},
        {"weight_bytes_bound", bound_bytes}}},
      {"bytes_per_token",
       {{"weights", weight_bytes_per_token},
        {"kv_cache", kv_bytes},
        {"total", static_cast<uint64_t>(bytes_per_token)},
        {"kv_cache_dtype", "f32"},
        {"kv_mean_context", mean_context},
        {"what",
         "per layer q/k/v/o (+ biases, norms), router, top_k x (gate+up+down); final norm, lm_head (vocab x hidden), "
         "one embedding row; K and V read at the mean decode context"}}},
      {"workload",
       {{"prompt_tokens", o.prompt_tokens},
        {"decode_steps", f.decode_steps},
        {"batch", 1},
        {"sampling", "greedy"},
        {"ignore_eos", true},
        {"reps", o.reps},
        {"warmup", o.warmup},
        {"prefill_chunk", std::min(o.prefill_chunk, capacity)}}},
      {"bandwidth",
       {{"copy_gbs", copy_gbs},
        {"read_gbs", read_gbs},
        {"copy_gbs_reps", bw.copy_gbs},
        {"read_gbs_reps", bw.read_gbs},
        {"reps_before_run", bw_before_reps},
        {"array_bytes", bw.array_bytes},
        {"threads", threads},
        {"method",
         "best of the reps, half before and half after the model runs; copy = memcpy of one array into the other, "
         "counted as read + write bytes as STREAM counts Copy; read = vectorised sum over one array; GB = 1e9 bytes"}}},
      {"figures",
       {{"load_seconds", load_seconds},
        {"prompt_tokens_per_second", reps_json(f.prompt_tps)},
        {"decode_tokens_per_second", reps_json(f.decode_tps)},
        {"ttft_seconds", reps_json(f.ttft)},
        {"prefill_seconds", reps_json(f.prefill_s)},
        {"decode_seconds", reps_json(f.decode_s)},
        {"warmup_prompt_tokens_per_second", warm.prompt_tps},
        {"warmup_decode_tokens_per_second", warm.decode_tps}}},
      {"contention", o.contend > 0
                         ? json{{"busy_processes", o.contend},
                                {"scheduler", sched},
                                {"decode_tokens_per_second_quiet", median(f.decode_tps)},
                                {"decode_tokens_per_second_contended", reps_json(busy.decode_tps)},
                                {"prompt_tokens_per_second_contended", reps_json(busy.prompt_tps)},
                                {"contended_over_quiet", contended_ratio},
                                {"target", 1.0 / (1.0 + o.contend)},
                                {"waits_on_a_preempted_thread", preempted},
                                {"what", "the same reps run again beside N child processes spinning on a core each"}}
                         : json(nullptr)},
      {"bound",
       {{"decode_tokens_per_second_from_copy_bw", bound_copy},
        {"decode_tokens_per_second_from_read_bw", bound_read},
        {"formula",
         "bandwidth / bytes_per_token.total (PERFORMANCE.md, batch-1 decode reads every active weight once)"}}},
      {"efficiency",
       {{"decode_vs_copy_bound", decode_tps / bound_copy}, {"decode_vs_read_bound", decode_tps / bound_read}}},
      {"prefill",
       {{"flops_per_token_nominal", flops_per_token_nominal},
        {"flops_per_prompt", prompt_flops},
        {"gflops_per_second_median", prefill_gflops},
        {"what",
         "flops_per_prompt counts 2 x the active layer matmul params per prompt token, the lm_head once (only the last "
         "row's logits are computed) and attention scores/sums; no bandwidth bound is quoted for prefill"}}},
      {"notes",
       json::array({"Random routers route near-uniformly: every prefill chunk touches all experts and any expert-cache "
                    "hit rate would be pessimistic. Batch-1 decode reads top_k experts per layer either way.",
                    "Shared machine: other work may run beside the benchmark (see load averages); compare ratios "
                    "measured in one run."})}};
  write_record(out, record);
  std::printf("record    %s\n", out.string().c_str());
  return 0;
}

}  // namespace
}  // namespace moe::bench

int main(int argc, char** argv) {
  using moe::bench::Options;
  Options o;
  CLI::App app{
      "moe_bench_generate: prefill and decode throughput of the CPU backend on a random-weight MoE model in a real\n"
      "shape, beside the memory-bandwidth bound of batch-1 decode (bandwidth / bytes read per token) measured on this\n"
      "machine in the same run. Prints a table and writes one JSON record. Defaults: a Mixtral-shaped model of about\n"
      "1.6 GB (bf16), 128 prompt tokens, 32 decode steps, 3 repetitions, median quoted."};
  app.add_option("--arch", o.arch, "Architecture: mixtral, qwen2_moe, qwen3_moe, olmoe (or the HF class name)")
      ->capture_default_str();
  app.add_option("--layers", o.layers, "Decoder layers")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--hidden", o.hidden, "Hidden size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--experts", o.experts, "Routed experts per layer")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--top-k", o.top_k, "Experts per token")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--expert-width", o.expert_width, "Intermediate width of one expert")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--heads", o.heads, "Attention heads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", o.kv_heads, "Key/value heads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--head-dim", o.head_dim, "Head dimension; 0 = hidden / heads")->capture_default_str();
  app.add_option("--vocab", o.vocab, "Vocabulary size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--shared-width", o.shared_width, "qwen2_moe shared-expert width; 0 = --expert-width")
      ->capture_default_str();
  app.add_option("--dense-width", o.dense_width, "qwen dense-layer MLP width; 0 = 4 x --expert-width")
      ->capture_default_str();
  app.add_option("--sparse-step", o.sparse_step, "qwen decoder_sparse_step: every n-th layer is MoE")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option(
      "--quant,-q", o.quant,
      "Benchmark the model quantized with this recipe (q8, q4, q3, q2, mixed-4-2, attn=q4,experts=q2g16, ...),\n"
      "converted once into the quantization cache");
  app.add_option("--quantizer", o.quantizer, "Quantizer for --quant: hqq or rtn")->capture_default_str();
  app.add_option("--dtype", o.dtype, "Weight dtype")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
  app.add_option("--seed", o.seed, "Seed of the random weights and the random prompt")->capture_default_str();
  app.add_option("--model-dir", o.model_dir,
                 "Where the model is written, or reused when it already holds this exact model\n"
                 "(default /tmp/moe-bench-<shape>[-<dtype> unless bf16], e.g. /tmp/moe-bench-mixtral-moderate)");
  app.add_option("--gguf", o.gguf,
                 "Benchmark this GGUF file (types as stored) instead of the random-weight model; the shape\n"
                 "options are then ignored (benchmarks/gguf_side_by_side.sh makes Mixtral-shaped GGUF files)");
  app.add_flag("--regenerate", o.regenerate, "Write the model even when --model-dir already holds it");
  app.add_option("--device", o.device, "Backend: cpu, cuda (GPU 0) or cuda:N; with cuda the bound is the GPU's memory")
      ->capture_default_str();
  app.add_option("--threads,-t", o.threads,
                 "CPU threads for the model and the bandwidth passes (default: all cores, "
                 "or OMP_NUM_THREADS)");
  app.add_option("--prompt-tokens", o.prompt_tokens, "Prompt length (random token ids)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--decode-tokens", o.decode_tokens, "Greedy decode steps timed after the first token (EOS ignored)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--prefill-chunk", o.prefill_chunk, "Prompt tokens per forward pass")->capture_default_str();
  app.add_option("--reps", o.reps, "Timed repetitions (median quoted)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "Untimed runs first (page in the weights, warm the allocator)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--contend", o.contend,
                 "Run the reps again beside this many busy processes (one spinning core each) and report\n"
                 "contended vs quiet speed; MOE_CPU_THREADS=openmp compares OpenMP's fork/join")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--bw-mib", o.bw_mib, "Size of each of the two bandwidth arrays, MiB (>> last-level cache)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--bw-reps", o.bw_reps, "Bandwidth repetitions before and again after the model runs (best quoted)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--out,-o", o.out, "JSON record path (default <source>/benchmarks/results/cpu-<shape>-<dtype>.json)");
  app.add_flag("--no-record", o.no_record, "Print the table only; write no JSON record");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return moe::bench::run(o);
  } catch (const moe::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe_bench_generate: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe_bench_generate: internal error: %s\n", e.what());
    return 2;
  }
}
