// moe_bench_serve: a load generator over HTTP against `moe serve`, in the conventions of
// `vllm bench serve`: at each concurrency (1, 2, 4, 8, 16 by default) it sends a fixed number of
// streaming completion requests with random prompts, at most `concurrency` in flight, and reports
// request throughput, output tokens/s, time to first token, time per output token and inter-token
// latency (mean, median, p99). Beside each row, the bound: the weight bytes the server's steps
// actually read (dense weights once per step plus each distinct routed expert touched, from its
// /metrics) over this machine's copy bandwidth, measured in the same run. Starts the server itself
// on the Mixtral-shaped benchmark model (random weights, quantized, as moe_bench_generate uses), or
// drives one given by --url. Prints a table and writes one JSON record.
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/bench_model.h"
#include "benchmarks/bench_record.h"
#include "benchmarks/memory_bandwidth.h"
#include "runtime/core/error.h"
#include "runtime/model/config.h"
#include "runtime/model/synthetic_model.h"
#include "runtime/quant/quant_cache.h"

#ifndef MOE_SOURCE_DIR
#define MOE_SOURCE_DIR "."
#endif
#ifndef MOE_CONFIGURE_COMMIT
#define MOE_CONFIGURE_COMMIT ""
#endif

extern char** environ;

namespace moe::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;  // an existing server; else one is started
  std::string moe;  // the moe program (default: ../launch/moe next to this one)
  std::string model_dir = "/tmp/moe-bench-mixtral-moderate";
  std::string quant = "q4";
  int threads = 0;
  int64_t max_seqs = 16;
  std::vector<int> concurrency = {1, 2, 4, 8, 16};
  int64_t num_prompts = 0;  // per level; 0: max(8, 4 x concurrency)
  int64_t prompt_tokens = 128;
  int64_t output_tokens = 64;
  uint64_t seed = 0;
  int64_t bw_mib = 512;
  int bw_reps = 5;
  std::vector<std::string> server_args;  // appended to `moe serve` (e.g. --device cuda)
  std::string out;
  bool no_record = false;
};

// ---- the server under test ----------------------------------------------------------------------

struct Server {
  pid_t pid = -1;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string command;
  ~Server() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int status = 0;
      waitpid(pid, &status, 0);
    }
  }
};

void start_server(const Options& o, const fs::path& model, Server& s) {
  const fs::path moe =
      !o.moe.empty() ? fs::path(o.moe) : fs::read_symlink("/proc/self/exe").parent_path() / ".." / "launch" / "moe";
  MOE_CHECK(fs::exists(moe), moe.string(), ": no moe program there (give --moe)");
  const int64_t context = o.prompt_tokens + o.output_tokens + 16;
  std::vector<std::string> args = {moe.string(), "serve",
                                   "--model",    model.string(),
                                   "--port",     "0",
                                   "--max-seqs", std::to_string(o.max_seqs),
                                   "--ctx-size", std::to_string(context)};
  if (o.threads > 0) args.insert(args.end(), {"--threads", std::to_string(o.threads)});
  args.insert(args.end(), o.server_args.begin(), o.server_args.end());
  for (const std::string& a : args) s.command += (s.command.empty() ? "" : " ") + a;
  int err_pipe[2];
  MOE_CHECK(pipe(err_pipe) == 0, "pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&fa, err_pipe[0]);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  MOE_CHECK(posix_spawn(&s.pid, argv[0], &fa, nullptr, argv.data(), environ) == 0, "cannot start ", s.command);
  posix_spawn_file_actions_destroy(&fa);
  close(err_pipe[1]);
  // Read stderr until the server says where it listens and that it is ready; keep draining after.
  FILE* err = fdopen(err_pipe[0], "r");
  char line[4096];
  const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
  bool ready = false;
  while (!ready && std::fgets(line, sizeof line, err)) {
    std::fputs(line, stderr);
    std::cmatch m;
    if (std::regex_search(line, m, listening)) s.port = std::stoi(m[1].str());
    if (std::strstr(line, "moe serve: ready")) ready = true;
  }
  MOE_CHECK(ready && s.port > 0, "moe serve did not become ready: ", s.command);
  std::thread([err] {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, err)) std::fputs(buf, stderr);
    std::fclose(err);
  }).detach();
}

// ---- /metrics ----------------------------------------------------------------------------------

struct EngineCounters {
  double weight_bytes = 0, steps = 0, generated = 0, busy = 0, prefill_rows = 0, expert_calls = 0, preemptions = 0;
};

EngineCounters read_counters(httplib::Client& c) {
  const httplib::Result r = c.Get("/metrics");
  MOE_CHECK(r && r->status == 200, "GET /metrics failed");
  EngineCounters e;
  std::istringstream in(r->body);
  std::string name;
  double v = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream l(line);
    if (!(l >> name >> v)) continue;
    if (name == "moe_weight_bytes_read_total") e.weight_bytes = v;
    if (name == "moe_engine_steps_total") e.steps = v;
    if (name == "moe_generation_tokens_total") e.generated = v;
    if (name == "moe_engine_busy_seconds_total") e.busy = v;
    if (name == "moe_prefill_rows_total") e.prefill_rows = v;
    if (name == "moe_expert_calls_total") e.expert_calls = v;
    if (name == "moe_num_preemptions_total") e.preemptions = v;
  }
  return e;
}

// ---- one request ---------------------------------------------------------------------------------

struct RequestTiming {
  bool ok = false;
  std::string error;
  double ttft = 0, e2e = 0;
  int64_t output_tokens = 0, prompt_tokens = 0;
  std::vector<double> itl;  // gaps between successive token arrivals
};

RequestTiming run_request(const std::string& host, int port, const std::vector<int32_t>& prompt, int64_t max_tokens) {
  RequestTiming t;
  httplib::Client c(host, port);
  c.set_read_timeout(600);
  c.set_connection_timeout(30);
  const json body = {{"prompt", prompt},
                     {"max_tokens", max_tokens},
                     {"temperature", 0},
                     {"ignore_eos", true},
                     {"stream", true},
                     {"return_token_ids", true},
                     {"stream_options", {{"include_usage", true}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  std::string buffer;
  const auto t0 = Clock::now();
  Clock::time_point last;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    const auto now = Clock::now();
    buffer.append(data, n);
    for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") continue;
      const json j = json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("error")) {
        t.error = j["error"].value("message", "error event");
        continue;
      }
      if (j.contains("usage") && j["usage"].is_object()) t.prompt_tokens = j["usage"].value("prompt_tokens", 0);
      for (const json& ch : j.value("choices", json::array())) {
        const auto ids = ch.value("token_ids", json::array()).size();
        if (ids == 0) continue;
        if (t.output_tokens == 0)
          t.ttft = std::chrono::duration<double>(now - t0).count();
        else
          for (size_t i = 0; i < ids; ++i)  // several tokens in one arrival: the gap is shared
            t.itl.push_back(std::chrono::duration<double>(now - last).count() / static_cast<double>(ids));
        t.output_tokens += static_cast<int64_t>(ids);
        last = now;
      }
    }
    return true;
  };
  const httplib::Result r = c.send(req);
  t.e2e = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!r) {
    t.error = "connection failed: " + httplib::to_string(r.error());
  } else if (r->status != 200) {
    t.error = str_cat("HTTP ", r->status);
  }
  t.ok = t.error.empty() && t.output_tokens == max_tokens;
  if (t.error.empty() && !t.ok) t.error = str_cat(t.output_tokens, " tokens, expected ", max_tokens);
  return t;
}

// ---- statistics ----------------------------------------------------------------------------------

json summary(const std::vector<double>& v, double scale) {
  return {{"mean", mean(v) * scale}, {"median", percentile(v, 50) * scale}, {"p99", percentile(v, 99) * scale}};
}

struct LevelResult {
  int concurrency = 0;
  int64_t requests = 0, completed = 0;
  double duration = 0;
  int64_t input_tokens = 0, output_tokens = 0;
  std::vector<double> ttft, tpot, itl, e2e;
  EngineCounters delta;
  std::vector<std::string> errors;
};

LevelResult run_level(const std::string& host, int port, int concurrency, int64_t n, const Options& o, int64_t vocab,
                      std::mt19937_64& rng) {
  // Random prompts: lengths uniform in [prompt_tokens / 2, prompt_tokens], ids uniform in the vocab.
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n));
  std::uniform_int_distribution<int64_t> len(std::max<int64_t>(1, o.prompt_tokens / 2), o.prompt_tokens);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab - 1));
  for (auto& p : prompts) {
    p.resize(static_cast<size_t>(len(rng)));
    for (int32_t& t : p) t = id(rng);
  }
  httplib::Client metrics(host, port);
  const EngineCounters before = read_counters(metrics);
  std::vector<RequestTiming> timings(static_cast<size_t>(n));
  std::atomic<int64_t> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w)
    workers.emplace_back([&] {
      for (int64_t i; (i = next++) < n;)
        timings[static_cast<size_t>(i)] = run_request(host, port, prompts[static_cast<size_t>(i)], o.output_tokens);
    });
  for (std::thread& t : workers) t.join();
  LevelResult r;
  r.duration = std::chrono::duration<double>(Clock::now() - t0).count();
  const EngineCounters after = read_counters(metrics);
  r.delta = EngineCounters{after.weight_bytes - before.weight_bytes, after.steps - before.steps,
                           after.generated - before.generated,       after.busy - before.busy,
                           after.prefill_rows - before.prefill_rows, after.expert_calls - before.expert_calls,
                           after.preemptions - before.preemptions};
  r.concurrency = concurrency;
  r.requests = n;
  for (size_t i = 0; i < timings.size(); ++i) {
    const RequestTiming& t = timings[i];
    if (!t.ok) {
      r.errors.push_back(t.error);
      continue;
    }
    ++r.completed;
    r.input_tokens += static_cast<int64_t>(prompts[i].size());
    r.output_tokens += t.output_tokens;
    r.ttft.push_back(t.ttft);
    r.e2e.push_back(t.e2e);
    if (t.output_tokens > 1) r.tpot.push_back((t.e2e - t.ttft) / static_cast<double>(t.output_tokens - 1));
    r.itl.insert(r.itl.end(), t.itl.begin(), t.itl.end());
  }
  return r;
}

int run(const Options& o) {
  MOE_CHECK(!o.concurrency.empty() && o.prompt_tokens > 0 && o.output_tokens > 0, "bad options");
  for (int c : o.concurrency) MOE_CHECK(c >= 1 && c <= 1024, "--concurrency values must be in [1, 1024]");
  const GitRevision git = git_revision(MOE_SOURCE_DIR, MOE_CONFIGURE_COMMIT);
  const std::string date = utc_now_iso8601();
  const MachineInfo machine = machine_info();

  Server server;
  fs::path load_dir;
  int64_t vocab = 32000;
  std::string model_summary = "external server";
  if (o.url.empty()) {
    const SyntheticModelSpec spec = mixtral_moderate_spec();
    prepare_model(o.model_dir, spec, false);
    load_dir = o.model_dir;
    if (!o.quant.empty())
      load_dir = cached_packed_model(o.model_dir, QuantRecipe::parse(o.quant), QuantizeOptions{}, {}, nullptr);
    const ModelConfig c = load_model_config(load_dir);
    vocab = c.vocab_size;
    model_summary = c.summary();
    start_server(o, load_dir, server);
  } else {
    const std::regex url(R"(http://([^:/]+):(\d+)/?)");
    std::smatch m;
    MOE_CHECK(std::regex_match(o.url, m, url), "--url must look like http://HOST:PORT");
    server.host = m[1].str();
    server.port = std::stoi(m[2].str());
    server.command = "(external) " + o.url;
  }

  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  std::fprintf(stderr, "measuring memory bandwidth (%d threads) ...\n", threads);
  BandwidthResult bw = measure_memory_bandwidth(static_cast<size_t>(o.bw_mib) << 20, threads, o.bw_reps);

  std::mt19937_64 rng(o.seed + 17);
  // One untimed request first: pages the weights in and warms the server.
  (void)run_level(server.host, server.port, 1, 1, o, vocab, rng);
  std::vector<LevelResult> levels;
  for (const int c : o.concurrency) {
    const int64_t n = o.num_prompts > 0 ? o.num_prompts : std::max<int64_t>(8, 4 * int64_t{c});
    std::fprintf(stderr, "concurrency %d: %lld requests ...\n", c, static_cast<long long>(n));
    levels.push_back(run_level(server.host, server.port, c, n, o, vocab, rng));
  }
  const BandwidthResult bw_after = measure_memory_bandwidth(static_cast<size_t>(o.bw_mib) << 20, threads, o.bw_reps);
  bw.copy_gbs.insert(bw.copy_gbs.end(), bw_after.copy_gbs.begin(), bw_after.copy_gbs.end());
  bw.read_gbs.insert(bw.read_gbs.end(), bw_after.read_gbs.begin(), bw_after.read_gbs.end());
  const double copy_gbs = bw.best_copy_gbs();

  std::printf("moe_bench_serve   commit %s%s   %s\n", git.commit.c_str(), git.dirty ? " (dirty)" : "", date.c_str());
  std::printf("machine   %s, %s, %d logical cores, %.1f GiB RAM, load average %s\n", machine.hostname.c_str(),
              machine.cpu_model.c_str(), machine.logical_cores, machine.ram_gib, machine.load_average.c_str());
  std::printf("server    %s\n", server.command.c_str());
  std::printf("model     %s%s\n", model_summary.c_str(), o.quant.empty() ? "" : (", " + o.quant).c_str());
  std::printf(
      "workload  random prompts of %lld-%lld token ids, %lld output tokens each (greedy, EOS ignored), "
      "streamed\n",
      static_cast<long long>(std::max<int64_t>(1, o.prompt_tokens / 2)), static_cast<long long>(o.prompt_tokens),
      static_cast<long long>(o.output_tokens));
  std::printf("bandwidth copy %.2f GB/s (best of %zu, before and after)\n\n", copy_gbs, bw.copy_gbs.size());
  std::printf("%5s %5s %8s %8s %9s | %8s %8s %8s | %7s %7s %7s | %7s %7s %7s | %8s %7s %9s %7s\n", "conc", "reqs",
              "req/s", "out t/s", "total t/s", "ttft ms", "med", "p99", "tpot ms", "med", "p99", "itl ms", "med", "p99",
              "MB/step", "rows/st", "bound t/s", "of bnd");
  json rows = json::array();
  for (const LevelResult& r : levels) {
    const double out_tps = static_cast<double>(r.output_tokens) / r.duration;
    const double total_tps = static_cast<double>(r.output_tokens + r.input_tokens) / r.duration;
    const double bound_seconds = r.delta.weight_bytes / (copy_gbs * 1e9);
    const double bound_tps = bound_seconds > 0 ? static_cast<double>(r.output_tokens) / bound_seconds : 0;
    const double fraction = bound_tps > 0 ? out_tps / bound_tps : 0;
    const double mb_step = r.delta.steps > 0 ? r.delta.weight_bytes / r.delta.steps / 1e6 : 0;
    const double rows_step = r.delta.steps > 0 ? (r.delta.generated + r.delta.prefill_rows) / r.delta.steps : 0;
    std::printf(
        "%5d %5lld %8.2f %8.1f %9.1f | %8.1f %8.1f %8.1f | %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f | %8.1f %7.2f %9.1f "
        "%6.0f%%\n",
        r.concurrency, static_cast<long long>(r.completed), static_cast<double>(r.completed) / r.duration, out_tps,
        total_tps, mean(r.ttft) * 1e3, percentile(r.ttft, 50) * 1e3, percentile(r.ttft, 99) * 1e3, mean(r.tpot) * 1e3,
        percentile(r.tpot, 50) * 1e3, percentile(r.tpot, 99) * 1e3, mean(r.itl) * 1e3, percentile(r.itl, 50) * 1e3,
        percentile(r.itl, 99) * 1e3, mb_step, rows_step, bound_tps, 100 * fraction);
    for (const std::string& e : r.errors) std::printf("      error: %s\n", e.c_str());
    rows.push_back({{"concurrency", r.concurrency},
                    {"requests", r.requests},
                    {"completed", r.completed},
                    {"failed", r.errors.size()},
                    {"duration_seconds", r.duration},
                    {"input_tokens", r.input_tokens},
                    {"output_tokens", r.output_tokens},
                    {"request_throughput", static_cast<double>(r.completed) / r.duration},
                    {"output_tokens_per_second", out_tps},
                    {"total_tokens_per_second", total_tps},
                    {"ttft_ms", summary(r.ttft, 1e3)},
                    {"tpot_ms", summary(r.tpot, 1e3)},
                    {"itl_ms", summary(r.itl, 1e3)},
                    {"e2e_ms", summary(r.e2e, 1e3)},
                    {"engine",
                     {{"steps", r.delta.steps},
                      {"busy_seconds", r.delta.busy},
                      {"generated_tokens", r.delta.generated},
                      {"prefill_rows", r.delta.prefill_rows},
                      {"expert_calls", r.delta.expert_calls},
                      {"preemptions", r.delta.preemptions},
                      {"weight_bytes_read", r.delta.weight_bytes},
                      {"weight_bytes_per_step", r.delta.steps > 0 ? r.delta.weight_bytes / r.delta.steps : 0}}},
                    {"bound",
                     {{"seconds", bound_seconds},
                      {"output_tokens_per_second", bound_tps},
                      {"fraction", fraction},
                      {"fraction_of_busy_time", r.delta.busy > 0 ? bound_seconds / r.delta.busy : 0}}}});
  }
  std::printf(
      "\nbound     the weight bytes the server's steps read in each row (dense once per step + every distinct "
      "routed expert\n          touched, /metrics) over the copy bandwidth; 'of bnd' = output tok/s / bound "
      "tok/s. KV-cache reads are\n          not in the bound. Random routers route near-uniformly, so "
      "batches touch nearly every expert.\n");
  if (o.no_record) return 0;
  const fs::path out = !o.out.empty()
                           ? fs::path(o.out)
                           : fs::path(MOE_SOURCE_DIR) / "benchmarks" / "results" /
                                 str_cat(std::any_of(o.server_args.begin(), o.server_args.end(),
                                                     [](const std::string& a) { return a.rfind("cuda", 0) == 0; })
                                             ? "cuda"
                                             : "cpu",
                                         "-serve-mixtral-moderate-", o.quant.empty() ? "bf16" : o.quant, ".json");
  json record = {{"benchmark", "moe_bench_serve"},
                 {"schema_version", 1},
                 {"git", {{"commit", git.commit}, {"dirty", git.dirty}}},
                 {"date", date},
                 {"machine", to_json(machine)},
                 {"server", server.command},
                 {"model", {{"summary", model_summary}, {"quantization", o.quant}, {"dir", load_dir.string()}}},
                 {"workload",
                  {{"prompt_tokens_min", std::max<int64_t>(1, o.prompt_tokens / 2)},
                   {"prompt_tokens_max", o.prompt_tokens},
                   {"output_tokens", o.output_tokens},
                   {"sampling", "greedy, ignore_eos"},
                   {"stream", true},
                   {"seed", o.seed}}},
                 {"bandwidth", {{"copy_gbs", copy_gbs}, {"copy_gbs_reps", bw.copy_gbs}, {"threads", threads}}},
                 {"rows", rows},
                 {"conventions",
                  "vllm bench serve: TTFT = request sent to first token; TPOT = (e2e - TTFT) / (output tokens - 1) "
                  "per request; ITL = gaps between token arrivals; percentiles by linear interpolation"}};
  write_record(out, record);
  std::printf("record    %s\n", out.string().c_str());
  return 0;
}

}  // namespace
}  // namespace moe::bench

int main(int argc, char** argv) {
  moe::bench::Options o;
  CLI::App app{
      "moe_bench_serve: load generator over HTTP against moe serve (vllm bench serve conventions), beside\n"
      "the bytes-read bound of the server's own steps. Starts the server on the Mixtral-shaped benchmark\n"
      "model unless --url is given."};
  app.add_option("--url", o.url, "Drive this server (http://HOST:PORT) instead of starting one");
  app.add_option("--moe", o.moe, "The moe program (default: ../launch/moe beside this program)");
  app.add_option("--model-dir", o.model_dir, "Where the random-weight benchmark model lives (written once)")
      ->capture_default_str();
  app.add_option("--quant", o.quant, "Recipe of the served model ('' for bf16)")->capture_default_str();
  app.add_option("--threads,-t", o.threads, "Server threads (default: all cores)");
  app.add_option("--max-seqs", o.max_seqs, "Server --max-seqs")->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "Concurrency levels")->delimiter(',')->capture_default_str();
  app.add_option("--num-prompts", o.num_prompts, "Requests per level (0: max(8, 4 x concurrency))");
  app.add_option("--prompt-tokens", o.prompt_tokens, "Longest prompt (lengths uniform in [half, this])")
      ->capture_default_str();
  app.add_option("--output-tokens", o.output_tokens, "Tokens generated per request")->capture_default_str();
  app.add_option("--seed", o.seed, "Prompt seed")->capture_default_str();
  app.add_option("--bw-mib", o.bw_mib, "Bandwidth array size, MiB")->capture_default_str();
  app.add_option("--bw-reps", o.bw_reps, "Bandwidth repetitions before and after")->capture_default_str();
  app.add_option("--server-arg", o.server_args,
                 "Extra argument for moe serve (repeatable: --server-arg=--device --server-arg=cuda)");
  app.add_option("--out,-o", o.out, "JSON record (default benchmarks/results/cpu-serve-mixtral-moderate-<quant>.json)");
  app.add_flag("--no-record", o.no_record, "Print the table only");
  CLI11_PARSE(app, argc, argv);
  try {
    return moe::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_bench_serve: error: %s\n", e.what());
    return 1;
  }
}
