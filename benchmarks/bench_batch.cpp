// moe_bench_batch: the batch engine in-process (no HTTP): decode throughput with B sequences in
// every step, B = 1, 2, 4, 8, 16, on the Mixtral-shaped benchmark model, beside each step's own
// bound: the weight bytes it read (dense once + each distinct routed expert touched) over the copy
// bandwidth measured in the same run. Separates what batching gains from what serving costs
// (moe_bench_serve measures the same engine behind the HTTP server).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "benchmarks/bench_model.h"
#include "benchmarks/bench_record.h"
#include "benchmarks/memory_bandwidth.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/batch/batch_engine.h"
#include "runtime/core/error.h"
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
  std::string model_dir = "/tmp/moe-bench-mixtral-moderate";
  std::string quant = "q4";
  int threads = 0;
  std::vector<int> batch = {1, 2, 4, 8, 16};
  int64_t prompt_tokens = 32;
  int64_t decode_steps = 48;
  int reps = 3;
  int64_t bw_mib = 512;
  int bw_reps = 5;
  std::string out;
  bool no_record = false;
};

struct Rep {
  double seconds = 0;
  double steps = 0, tokens = 0, bytes = 0;
};

int run(const Options& o) {
  const GitRevision git = git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const MachineInfo machine = machine_info();
  prepare_model(o.model_dir, mixtral_moderate_spec(), false);
  fs::path dir = o.model_dir;
  if (!o.quant.empty())
    dir = cached_packed_model(o.model_dir, QuantRecipe::parse(o.quant), QuantizeOptions{}, {}, nullptr);
  CpuBackend backend(o.threads);
  std::unique_ptr<Model> m = Model::load(dir, backend);
  const ModelConfig& c = m->config();
  const int max_b = *std::max_element(o.batch.begin(), o.batch.end());
  const int64_t context = o.prompt_tokens + o.decode_steps + 2;
  Transformer t(c, m->weights(), m->layout(), backend, std::max<int64_t>(256, max_b), max_b);
  KvPool pool(backend, c, m->layout(), max_b * ((context + 15) / 16), 16, context);
  BatchEngineOptions eo;
  eo.limits = SchedulerLimits{max_b, std::max<int64_t>(256, max_b), 0};
  weight_traffic(m->weights(), eo);
  BatchEngine engine(t, pool, c.vocab_size, nullptr, eo);

  std::fprintf(stderr, "measuring memory bandwidth (%d threads) ...\n", backend.threads());
  BandwidthResult bw = measure_memory_bandwidth(static_cast<size_t>(o.bw_mib) << 20, backend.threads(), o.bw_reps);
  std::mt19937_64 rng(5);
  std::vector<std::vector<Rep>> reps(o.batch.size());
  for (int r = -1; r < o.reps; ++r) {  // r = -1: warm-up
    for (size_t bi = 0; bi < o.batch.size(); ++bi) {
      const int b = o.batch[bi];
      for (int i = 0; i < b; ++i) {
        RequestParams p;
        p.prompt.resize(static_cast<size_t>(o.prompt_tokens));
        for (int32_t& id : p.prompt) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(c.vocab_size));
        p.max_tokens = o.decode_steps + 1;
        engine.submit(std::move(p), nullptr);
      }
      engine.step();  // every prompt in one step (b x prompt_tokens <= 256 rows... or a few)
      while (engine.stats().prefill_rows < engine.stats().prompt_tokens) engine.step();
      const BatchEngineStats s0 = engine.stats();
      const auto t0 = std::chrono::steady_clock::now();
      while (engine.step()) {
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const BatchEngineStats s1 = engine.stats();
      if (r >= 0)
        reps[bi].push_back(Rep{secs, static_cast<double>(s1.steps - s0.steps),
                               static_cast<double>(s1.generated_tokens - s0.generated_tokens),
                               static_cast<double>(s1.weight_bytes_read - s0.weight_bytes_read)});
    }
  }
  const BandwidthResult after =
      measure_memory_bandwidth(static_cast<size_t>(o.bw_mib) << 20, backend.threads(), o.bw_reps);
  bw.copy_gbs.insert(bw.copy_gbs.end(), after.copy_gbs.begin(), after.copy_gbs.end());
  bw.read_gbs.insert(bw.read_gbs.end(), after.read_gbs.begin(), after.read_gbs.end());
  const double copy = bw.best_copy_gbs(), read = bw.best_read_gbs();

  std::printf("moe_bench_batch   commit %s%s   %s\n", git.commit.c_str(), git.dirty ? " (dirty)" : "",
              utc_now_iso8601().c_str());
  std::printf("machine   %s, %d logical cores, %d threads, load average %s\n", machine.cpu_model.c_str(),
              machine.logical_cores, backend.threads(), machine.load_average.c_str());
  std::printf("model     %s, %s (%.1f MB)\n", c.summary().c_str(), o.quant.empty() ? "bf16" : o.quant.c_str(),
              static_cast<double>(m->weights().bytes) / 1e6);
  std::printf("workload  B sequences with %lld-token prompts, then %lld decode steps each (greedy); median of %d\n",
              static_cast<long long>(o.prompt_tokens), static_cast<long long>(o.decode_steps), o.reps);
  std::printf("bandwidth copy %.2f GB/s, read %.2f GB/s (best of %zu)\n\n", copy, read, bw.copy_gbs.size());
  std::printf("%4s %10s %10s %10s %12s %12s %8s %8s\n", "B", "step ms", "tok/s", "MB/step", "bound tok/s", "(read bw)",
              "of copy", "of read");
  json rows = json::array();
  double tps1 = 0;
  for (size_t bi = 0; bi < o.batch.size(); ++bi) {
    std::vector<double> step_ms, tps, mb;
    for (const Rep& r : reps[bi]) {
      step_ms.push_back(r.seconds / r.steps * 1e3);
      tps.push_back(r.tokens / r.seconds);
      mb.push_back(r.bytes / r.steps / 1e6);
    }
    const double ms = median(step_ms), tok = median(tps), mbs = median(mb);
    const double per_step_tokens = static_cast<double>(o.batch[bi]);
    const double bound_copy = per_step_tokens / (mbs * 1e6 / (copy * 1e9));
    const double bound_read = per_step_tokens / (mbs * 1e6 / (read * 1e9));
    if (o.batch[bi] == 1) tps1 = tok;
    std::printf("%4d %10.2f %10.1f %10.1f %12.1f %12.1f %7.0f%% %7.0f%%\n", o.batch[bi], ms, tok, mbs, bound_copy,
                bound_read, 100 * tok / bound_copy, 100 * tok / bound_read);
    rows.push_back({{"batch", o.batch[bi]},
                    {"step_ms", {{"reps", step_ms}, {"median", ms}}},
                    {"decode_tokens_per_second", {{"reps", tps}, {"median", tok}}},
                    {"weight_mb_per_step", mbs},
                    {"bound_tokens_per_second_copy", bound_copy},
                    {"bound_tokens_per_second_read", bound_read},
                    {"fraction_of_copy_bound", tok / bound_copy},
                    {"fraction_of_read_bound", tok / bound_read},
                    {"speedup_vs_batch_1", tps1 > 0 ? tok / tps1 : 0}});
  }
  if (o.no_record) return 0;
  const fs::path out = !o.out.empty()
                           ? fs::path(o.out)
                           : fs::path(MOE_SOURCE_DIR) / "benchmarks" / "results" /
                                 str_cat("cpu-batch-mixtral-moderate-", o.quant.empty() ? "bf16" : o.quant, ".json");
  write_record(
      out, json{{"benchmark", "moe_bench_batch"},
                {"schema_version", 1},
                {"git", {{"commit", git.commit}, {"dirty", git.dirty}}},
                {"date", utc_now_iso8601()},
                {"machine", to_json(machine)},
                {"threads", backend.threads()},
                {"model", {{"summary", c.summary()}, {"quantization", o.quant}, {"weights_bytes", m->weights().bytes}}},
                {"workload", {{"prompt_tokens", o.prompt_tokens}, {"decode_steps", o.decode_steps}, {"reps", o.reps}}},
                {"bandwidth", {{"copy_gbs", copy}, {"read_gbs", read}, {"copy_gbs_reps", bw.copy_gbs}}},
                {"rows", rows},
                {"bound", "B tokens per step / (weight bytes the step read / bandwidth); KV reads not counted"}});
  std::printf("record    %s\n", out.string().c_str());
  return 0;
}

}  // namespace
}  // namespace moe::bench

int main(int argc, char** argv) {
  moe::bench::Options o;
  CLI::App app{
      "moe_bench_batch: batched decode of the batch engine in-process, B sequences per step, beside the\n"
      "bytes-read bound of each step."};
  app.add_option("--model-dir", o.model_dir, "The random-weight benchmark model (written once)")->capture_default_str();
  app.add_option("--quant", o.quant, "Recipe ('' for bf16)")->capture_default_str();
  app.add_option("--threads,-t", o.threads, "CPU threads (default: all cores)");
  app.add_option("--batch", o.batch, "Batch sizes")->delimiter(',')->capture_default_str();
  app.add_option("--prompt-tokens", o.prompt_tokens, "Prompt length")->capture_default_str();
  app.add_option("--decode-steps", o.decode_steps, "Decode steps timed")->capture_default_str();
  app.add_option("--reps", o.reps, "Repetitions (median quoted)")->capture_default_str();
  app.add_option("--out,-o", o.out, "JSON record");
  app.add_flag("--no-record", o.no_record, "Print the table only");
  CLI11_PARSE(app, argc, argv);
  try {
    return moe::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_bench_batch: error: %s\n", e.what());
    return 1;
  }
}
