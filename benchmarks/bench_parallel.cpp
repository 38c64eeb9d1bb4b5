// moe_bench_parallel: 1 rank x 1 thread against 2 ranks x 1 thread on this machine, for tensor,
// expert and pipeline parallelism (pipeline with 1, 2 and 4 sequences in flight), on the
// Mixtral-shaped benchmark model in q4: decode tokens/s, speedup, efficiency (= speedup / ranks)
// and the communication time and bytes per token. Run without arguments it is the driver: it
// prepares the model, starts itself under mpirun for every configuration (--worker), and prints
// the table and writes the JSON record that moe_bench_project calibrates its cost model on.
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "benchmarks/bench_model.h"
#include "benchmarks/bench_record.h"
#include "benchmarks/memory_bandwidth.h"
#include "parallel/mpi_communicator.h"
#include "parallel/parallel_setup.h"
#include "parallel/pipelined_decode.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/model/model.h"
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
  int64_t prompt_tokens = 16;
  int64_t decode_steps = 32;
  int reps = 3;
  std::string out;
  bool no_record = false;
  std::string mpirun = "mpirun --allow-run-as-root --oversubscribe";
  // worker
  bool worker = false;
  std::string mode = "single";  // single | tp | ep | pp
  int ranks = 1;
  int threads = 1;
  int in_flight = 1;
  std::string packed;
  std::string result;
};

parallel::ParallelSpec spec_of(const std::string& mode, int ranks) {
  parallel::ParallelSpec s;
  if (mode == "tp")
    s.tp = ranks;
  else if (mode == "ep")
    s.ep = ranks;
  else if (mode == "pp")
    s.pp = ranks;
  else
    MOE_CHECK(mode == "single" && ranks == 1, "--mode ", mode, " with ", ranks, " ranks");
  return s;
}

// One configuration under mpirun: decode `in_flight` sequences, reps times; rank 0 writes JSON.
int worker(const Options& o) {
  parallel::MpiSession mpi;
  std::unique_ptr<parallel::MpiCommunicator> world = parallel::MpiCommunicator::world();
  const parallel::ParallelSpec spec = spec_of(o.mode, o.ranks);
  CpuBackend backend(o.threads);
  const ParallelLayout layout = parallel::make_layout(Model::read_config(o.packed), spec, world->rank(), world->size());
  auto m = Model::load(o.packed, backend, &layout, false);
  const ModelConfig& c = m->config();
  parallel::StageComms comms = parallel::make_stage_comms(*world, m->layout(), backend);
  Transformer t(c, m->weights(), m->layout(), backend, 64);
  t.set_collectives(comms.collectives.get());
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<KvCache*> ptrs;
  for (int i = 0; i < o.in_flight; ++i) {
    caches.push_back(std::make_unique<KvCache>(backend, c, m->layout(), o.prompt_tokens + o.decode_steps + 2));
    ptrs.push_back(caches.back().get());
  }
  std::mt19937_64 rng(11);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(o.in_flight));
  for (auto& p : prompts)
    for (int64_t i = 0; i < o.prompt_tokens; ++i)
      p.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(c.vocab_size)));
  std::vector<double> tps, comm_s, comm_bytes, comm_calls;
  std::vector<int32_t> first_tokens;
  // The prompts alone (one new token): the collectives a prefill makes, taken off each rep's.
  const parallel::CommCounters p0 = comms.collectives->counters();
  parallel::pipelined_decode(t, m->layout(), *world, *world, backend, c.vocab_size, prompts, 1, ptrs);
  const parallel::CommCounters p1 = comms.collectives->counters();
  const double pre_s = p1.seconds - p0.seconds, pre_bytes = static_cast<double>(p1.bytes - p0.bytes),
               pre_calls = static_cast<double>(p1.calls - p0.calls);
  for (int r = -1; r < o.reps; ++r) {  // r = -1: warm-up
    const parallel::CommCounters c0 = comms.collectives->counters();
    const parallel::PipelinedDecodeResult res = parallel::pipelined_decode(
        t, m->layout(), *world, *world, backend, c.vocab_size, prompts, o.decode_steps + 1, ptrs);
    const parallel::CommCounters c1 = comms.collectives->counters();
    if (r < 0) {
      first_tokens = res.tokens[0];
      continue;
    }
    const double tokens = static_cast<double>(res.decode_tokens);
    tps.push_back(tokens / res.decode_seconds);
    // Communication per token: collectives (TP, EP) and the stage-to-stage sends (PP; the
    // receive side's time is mostly waiting for the other stage, reported separately).
    comm_s.push_back((c1.seconds - c0.seconds - pre_s + res.counters.send_seconds) / tokens);
    comm_bytes.push_back(
        (static_cast<double>(c1.bytes - c0.bytes) - pre_bytes + static_cast<double>(res.counters.bytes_sent)) / tokens);
    comm_calls.push_back(
        (static_cast<double>(c1.calls - c0.calls) - pre_calls + static_cast<double>(res.counters.sends)) / tokens);
  }
  // Rank 0 reports; the communication figures are rank 0's (every rank of a TP/EP stage does the
  // same collectives; for PP, rank 0 is the stage that sends the hidden states).
  if (world->rank() == 0) {
    const ModelWeights& w = m->weights();
    json j = {{"mode", o.mode},
              {"ranks", o.ranks},
              {"threads_per_rank", o.threads},
              {"in_flight", o.in_flight},
              {"tokens_per_second", median(tps)},
              {"tokens_per_second_reps", tps},
              {"seconds_per_token", 1.0 / median(tps)},
              {"comm_seconds_per_token", median(comm_s)},
              {"comm_bytes_per_token", median(comm_bytes)},
              {"comm_calls_per_token", median(comm_calls)},
              {"rank0_weight_bytes", w.bytes},
              {"first_sequence_tokens", first_tokens}};
    std::ofstream(o.result) << j.dump(1) << "\n";
  }
  return 0;
}

uint64_t mlp_bytes(const MlpWeights& m) {
  return m.gate.nbytes() + m.up.nbytes() + m.down.nbytes();
}

int driver(const Options& o, const char* self) {
  const GitRevision git = git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const MachineInfo machine = machine_info();
  prepare_model(o.model_dir, mixtral_moderate_spec(), false);
  const fs::path packed = cached_packed_model(o.model_dir, QuantRecipe::parse(o.quant), QuantizeOptions{}, {}, nullptr);
  // The model's bytes per token, by part (for the cost model).
  CpuBackend backend(1);
  std::unique_ptr<Model> m = Model::load(packed, backend, nullptr, false);
  const ModelConfig c = m->config();
  const ModelWeights& w = m->weights();
  const uint64_t weight_bytes = w.bytes, per_token = w.decode_bytes_per_token(c.experts_per_token),
                 lm_head = w.lm_head.nbytes();
  uint64_t attention = 0, experts = 0, replicated = 0;
  for (const LayerWeights& L : w.layers) {
    attention += L.attn.q.nbytes() + L.attn.k.nbytes() + L.attn.v.nbytes() + L.attn.o.nbytes();
    experts += static_cast<uint64_t>(c.experts_per_token) * mlp_bytes(L.moe.experts.front());
    replicated += L.moe.router.nbytes() + L.attn_norm.nbytes() + L.ffn_norm.nbytes();
  }
  replicated += w.final_norm.nbytes() + w.embed.nbytes() / static_cast<uint64_t>(c.vocab_size);
  m.reset();

  struct Config {
    std::string mode;
    int ranks, in_flight, threads;
  };
  // The baselines are 1 rank x 1 thread; "single x 2 threads" shows what the second core adds to
  // one process (the machine's own ceiling for 2 ranks when decode is memory-bound).
  const std::vector<Config> configs = {{"single", 1, 1, 1}, {"single", 1, 2, 1}, {"single", 1, 4, 1},
                                       {"single", 1, 1, 2}, {"tp", 2, 1, 1},     {"ep", 2, 1, 1},
                                       {"pp", 2, 1, 1},     {"pp", 2, 2, 1},     {"pp", 2, 4, 1}};
  // Read bandwidth with 1 and 2 threads: decode reads every active weight once per token, so their
  // ratio bounds what 2 ranks of 1 thread can gain over 1 on this machine.
  const double bw1 = measure_memory_bandwidth(size_t{512} << 20, 1, 5).best_read_gbs();
  const double bw2 = measure_memory_bandwidth(size_t{512} << 20, 2, 5).best_read_gbs();
  json runs = json::array();
  std::map<int, double> single_tps;  // by in-flight count
  std::printf("moe_bench_parallel   commit %s%s   %s\n", git.commit.c_str(), git.dirty ? " (dirty)" : "",
              utc_now_iso8601().c_str());
  std::printf("machine   %s, %d logical cores, load average %s\n", machine.cpu_model.c_str(), machine.logical_cores,
              machine.load_average.c_str());
  std::printf("model     %s, %s (%.1f MB), %.1f MB read per token\n", c.summary().c_str(), o.quant.c_str(),
              static_cast<double>(weight_bytes) / 1e6, static_cast<double>(per_token) / 1e6);
  std::printf("bandwidth read %.1f GB/s with 1 thread, %.1f GB/s with 2 (%.2fx)\n", bw1, bw2, bw2 / bw1);
  std::printf(
      "workload  greedy decode, %lld-token prompts, %lld steps per sequence, 1 thread per rank (pp: layers balanced by "
      "decode bytes), median of %d\n\n",
      static_cast<long long>(o.prompt_tokens), static_cast<long long>(o.decode_steps), o.reps);
  std::printf("%-7s %5s %7s %9s %10s %8s %10s %12s %12s %10s\n", "mode", "ranks", "threads", "in flight", "tok/s",
              "speedup", "efficiency", "comm ms/tok", "comm KB/tok", "calls/tok");
  std::vector<int32_t> reference;
  for (const Config& k : configs) {
    const fs::path result = fs::temp_directory_path() / ("moe-bench-parallel-" + std::to_string(::getpid()) + ".json");
    const std::string cmd =
        str_cat("OMP_NUM_THREADS=", k.threads, " ", o.mpirun, k.threads > 1 ? " --bind-to none" : "", " -np ", k.ranks,
                " ", self, " --worker --mode ", k.mode, " --ranks ", k.ranks, " --threads ", k.threads, " --in-flight ",
                k.in_flight, " --packed '", packed.string(), "' --result '", result.string(), "' --prompt-tokens ",
                o.prompt_tokens, " --decode-steps ", o.decode_steps, " --reps ", o.reps);
    const int rc = std::system(cmd.c_str());
    MOE_CHECK(rc == 0, "benchmark run failed (exit ", rc, "): ", cmd);
    json j;
    std::ifstream(result) >> j;
    fs::remove(result);
    const double tps = j["tokens_per_second"].get<double>();
    if (k.mode == "single" && k.threads == 1) single_tps[k.in_flight] = tps;
    // Speedup against one rank decoding the same number of sequences.
    const double base = single_tps.count(k.in_flight) ? single_tps[k.in_flight] : single_tps[1];
    j["speedup"] = tps / base;
    j["efficiency"] = tps / base / std::max(k.ranks, k.threads);
    // Every configuration must produce the same greedy tokens as the single process.
    const auto tokens = j["first_sequence_tokens"].get<std::vector<int32_t>>();
    if (reference.empty()) reference = tokens;
    size_t same = 0;
    while (same < tokens.size() && same < reference.size() && tokens[same] == reference[same]) ++same;
    j["same_tokens_as_single"] = tokens == reference;
    j["tokens_equal_to_single_before_first_difference"] = same;
    std::printf("%-7s %5d %7d %9d %10.2f %8.2f %9.0f%% %12.3f %12.1f %10.1f%s\n", k.mode.c_str(), k.ranks, k.threads,
                k.in_flight, tps, j["speedup"].get<double>(), 100 * j["efficiency"].get<double>(),
                1e3 * j["comm_seconds_per_token"].get<double>(), j["comm_bytes_per_token"].get<double>() / 1e3,
                j["comm_calls_per_token"].get<double>(),
                tokens == reference ? "" : str_cat("   tokens differ from token ", same, " on").c_str());
    runs.push_back(j);
  }
  const json record = {
      {"benchmark", "parallel"},
      {"git", git.commit},
      {"git_dirty", git.dirty},
      {"date", utc_now_iso8601()},
      {"machine", to_json(machine)},
      {"transport", "Open MPI, one host (shared memory), " + o.mpirun},
      {"read_bandwidth_gbs", {{"threads_1", bw1}, {"threads_2", bw2}, {"ceiling_speedup_2_ranks", bw2 / bw1}}},
      {"model",
       {{"name", "mixtral-moderate"},
        {"quant", o.quant},
        {"layers", c.num_layers},
        {"hidden", c.hidden_size},
        {"vocab", c.vocab_size},
        {"experts", c.num_experts},
        {"top_k", c.experts_per_token},
        {"weight_bytes_per_token", per_token},
        {"sharded_bytes_per_token", attention + experts},
        {"replicated_bytes_per_token", replicated},
        {"lm_head_bytes", lm_head},
        {"expert_bytes_per_token", experts},
        {"attention_bytes_per_token", attention}}},
      {"workload", {{"prompt_tokens", o.prompt_tokens}, {"decode_steps", o.decode_steps}, {"reps", o.reps}}},
      {"runs", runs}};
  if (!o.no_record) {
    const fs::path out = o.out.empty()
                             ? fs::path(MOE_SOURCE_DIR) / "benchmarks/results/cpu-parallel-mixtral-moderate-q4.json"
                             : fs::path(o.out);
    write_record(out, record);
    std::printf("\nrecord    %s\n", out.string().c_str());
  }
  return 0;
}

}  // namespace
}  // namespace moe::bench

int main(int argc, char** argv) {
  moe::bench::Options o;
  CLI::App app{"moe_bench_parallel: TP, EP and PP over 2 MPI ranks against 1, on the Mixtral-shaped model"};
  app.add_option("--model-dir", o.model_dir, "Where the benchmark model is written (reused when present)");
  app.add_option("--quant", o.quant, "Quantization recipe")->capture_default_str();
  app.add_option("--prompt-tokens", o.prompt_tokens)->capture_default_str();
  app.add_option("--decode-steps", o.decode_steps)->capture_default_str();
  app.add_option("--reps", o.reps)->capture_default_str();
  app.add_option("--out", o.out, "JSON record (default benchmarks/results/cpu-parallel-mixtral-moderate-q4.json)");
  app.add_flag("--no-record", o.no_record, "Print only");
  app.add_option("--mpirun", o.mpirun, "The mpirun command line the driver uses")->capture_default_str();
  app.add_flag("--worker", o.worker, "(internal) one configuration under mpirun");
  app.add_option("--mode", o.mode);
  app.add_option("--ranks", o.ranks);
  app.add_option("--in-flight", o.in_flight);
  app.add_option("--threads", o.threads);
  app.add_option("--packed", o.packed);
  app.add_option("--result", o.result);
  CLI11_PARSE(app, argc, argv);
  try {
    return o.worker ? moe::bench::worker(o) : moe::bench::driver(o, argv[0]);
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe_bench_parallel: error: %s\n", e.what());
    return 1;
  }
}
