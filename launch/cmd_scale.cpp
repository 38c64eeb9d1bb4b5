// moe scale: the scaling experiment in one command (docs/coordinator.md). For each worker count it
// runs a coordinator on loopback and launches `mpirun -np N moe worker` against it, runs the job,
// and takes the coordinator's figures; then prints the table (tokens/s, speedup and efficiency
// against the 1-worker run, bubble and communication fractions), writes JSON and, with gnuplot,
// a PNG plot.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "launch/cmd_coordinator.h"
#include "launch/commands.h"
#include "launch/engine.h"
#include "runtime/core/error.h"

extern char** environ;

namespace moe::cli {
namespace {

namespace fs = std::filesystem;

struct ScaleOptions {
  CoordinatorOptions run;
  std::string workers = "1,2";
  std::string split = "auto";  // auto | tp | pp | ep: what the N workers split
  std::string tokens = "1,15,27,300,42";
  int64_t max_new_tokens = 32;
  int threads = 1;
  int heartbeat_ms = 500;
  std::string mpirun = "mpirun --allow-run-as-root --oversubscribe";
  std::string json = "scale.json", plot = "scale.png";
};

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<int> parse_counts(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    const int n = std::atoi(item.c_str());
    MOE_CHECK(n >= 1, "--workers: '", item, "' is not a worker count (e.g. 1,2,4)");
    out.push_back(n);
  }
  MOE_CHECK(!out.empty() && out.front() == 1, "--workers must start with 1 (the baseline), got ", s);
  return out;
}

// Starts `mpirun -np n moe worker --coordinator address -t threads`; returns its pid.
pid_t launch_workers(const ScaleOptions& o, int n, const std::string& address) {
  std::vector<std::string> argv = words(o.mpirun);
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  for (const std::string& a : {std::string("-np"), std::to_string(n), self, std::string("worker"),
                               std::string("--coordinator"), address, std::string("-t"), std::to_string(o.threads)})
    argv.push_back(a);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  if (!o.run.token.empty()) setenv("MOE_COORDINATOR_TOKEN", o.run.token.c_str(), 1);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  MOE_CHECK(rc == 0, "moe scale: could not start ", o.mpirun, ": ", std::strerror(rc));
  return pid;
}

// Waits up to `seconds` for the workers' mpirun to exit, then kills it.
int reap(pid_t pid, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

struct Point {
  int workers = 0;
  std::string layers, split;
  double tokens_per_s = 0, bubble = 0, comm = 0;
  std::vector<int32_t> tokens;
};

int scale(ScaleOptions& o) {
  const std::vector<int> counts = parse_counts(o.workers);
  MOE_CHECK(o.split == "auto" || o.split == "tp" || o.split == "pp" || o.split == "ep",
            "--split must be auto, tp, pp or ep, got '", o.split, "'");
  o.run.job.model_dir = fs::absolute(o.run.model_dir).string();
  o.run.job.max_new_tokens = static_cast<int32_t>(o.max_new_tokens);
  o.run.job.prompt_token_ids = parse_token_list(o.tokens);
  std::vector<Point> points;
  for (const int n : counts) {
    CoordinatorOptions c = o.run;
    c.workers = n;
    if (o.split == "tp") c.tp = n, c.pp = 1, c.ep = 1;
    if (o.split == "pp") c.tp = 1, c.pp = n, c.ep = 1;
    if (o.split == "ep") c.tp = 1, c.pp = 1, c.ep = n;
    pid_t pid = -1;
    c.on_listening = [&](const std::string& address) { pid = launch_workers(o, n, address); };
    std::fprintf(stderr, "moe scale: %d worker%s...\n", n, n == 1 ? "" : "s");
    const CoordinatedRun r = run_coordinated(c, false);
    if (pid > 0) reap(pid, 30);
    MOE_CHECK(r.outcome.kind == coordinator::Outcome::Kind::finished, "moe scale: the run with ", n, " workers ended ",
              coordinator::to_string(r.outcome.kind), ": ", r.outcome.reason);
    Point p;
    p.workers = n;
    p.layers = r.plan.layers_spec();
    p.split = str_cat("tp ", r.plan.tp, " x pp ", r.plan.pp, " x ep ", r.plan.ep);
    // Decode speed as rank 0 measured it (the tokens after the first over their time).
    if (r.outcome.result && r.outcome.result->decode_seconds > 0)
      p.tokens_per_s = static_cast<double>(r.outcome.result->token_ids.size() - 1) / r.outcome.result->decode_seconds;
    p.bubble = r.outcome.metrics.bubble_fraction;
    p.comm = r.outcome.metrics.comm_wait_fraction;
    if (r.outcome.result) p.tokens = r.outcome.result->token_ids;
    points.push_back(p);
  }

  const double base = points.front().tokens_per_s;
  std::printf("| workers | split | layers | tok/s | speedup | efficiency | bubble | comm wait | same tokens |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  nlohmann::json j;
  j["model"] = o.run.job.model_dir;
  j["threads_per_worker"] = o.threads;
  j["new_tokens"] = o.max_new_tokens;
  for (const Point& p : points) {
    const double speedup = base > 0 ? p.tokens_per_s / base : 0;
    const bool same = p.tokens == points.front().tokens;
    std::printf("| %d | %s | %s | %.1f | %.2f | %.0f%% | %.0f%% | %.0f%% | %s |\n", p.workers, p.split.c_str(),
                p.layers.c_str(), p.tokens_per_s, speedup, 100 * speedup / p.workers, 100 * p.bubble, 100 * p.comm,
                same ? "yes" : "NO");
    j["points"].push_back({{"workers", p.workers},
                           {"split", p.split},
                           {"layers", p.layers},
                           {"tokens_per_s", p.tokens_per_s},
                           {"speedup", speedup},
                           {"efficiency", speedup / p.workers},
                           {"bubble_fraction", p.bubble},
                           {"comm_wait_fraction", p.comm},
                           {"same_tokens_as_one_worker", same}});
  }
  std::ofstream(o.json) << j.dump(2) << "\n";
  std::printf("json      %s\n", o.json.c_str());
  if (o.plot.empty()) return 0;
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::printf("plot      skipped: gnuplot is not installed (apt-get install gnuplot-nox)\n");
    return 0;
  }
  const std::string dat = o.plot + ".dat";
  {
    std::ofstream d(dat);
    for (const Point& p : points)
      d << p.workers << " " << p.tokens_per_s << " " << p.tokens_per_s / base / p.workers << "\n";
  }
  const std::string script =
      str_cat("set terminal pngcairo size 900,500; set output '", o.plot,
              "'; set xlabel 'workers'; set ylabel 'tokens/s'; set y2label 'efficiency'; set y2range [0:1.05]; set "
              "ytics nomirror;"
              " set y2tics; set key top left; set title 'moe scale (",
              o.split, ")';", " plot '", dat, "' using 1:2 with linespoints lw 2 title 'tokens/s', '", dat,
              "' using 1:3 axes x1y2 with linespoints dt 2 lw 2 title 'efficiency'");
  const int rc = std::system(("gnuplot -e \"" + script + "\"").c_str());
  fs::remove(dat);
  std::printf("plot      %s\n", rc == 0 ? o.plot.c_str() : "gnuplot failed");
  for (const Point& p : points)
    if (p.tokens != points.front().tokens) return 1;
  return 0;
}

}  // namespace

Action add_scale_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "scale",
      "The scaling experiment (docs/coordinator.md): for each --workers count, a coordinator on loopback and\n"
      "mpirun -np N moe worker; prints tokens/s, speedup and efficiency against 1 worker; JSON and a PNG plot.");
  auto o = std::make_shared<ScaleOptions>();
  cmd->add_option("--model", o->run.model_dir, "The model directory")->required();
  cmd->add_option("--workers", o->workers, "Worker counts, starting with 1")->capture_default_str();
  cmd->add_option("--split", o->split, "What the workers split: auto (the planner), tp, pp or ep")
      ->capture_default_str();
  cmd->add_option("--tokens", o->tokens, "The prompt as token ids")->capture_default_str();
  cmd->add_option("--max-new-tokens,-n", o->max_new_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--threads,-t", o->threads, "CPU threads per worker")->capture_default_str();
  cmd->add_option("--mpirun", o->mpirun, "The launcher and its flags")->capture_default_str();
  cmd->add_option("--heartbeat-ms", o->heartbeat_ms, "Heartbeat interval")->capture_default_str();
  cmd->add_option("--json", o->json, "The JSON record")->capture_default_str();
  cmd->add_option("--plot", o->plot, "The PNG plot (empty: none)")->capture_default_str();
  return [o] {
    o->run.heartbeat = std::chrono::milliseconds(o->heartbeat_ms);
    return scale(*o);
  };
}

}  // namespace moe::cli
