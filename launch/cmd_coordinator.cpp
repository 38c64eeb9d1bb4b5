// moe coordinator: the control plane of a job over several workers (docs/coordinator.md). Waits
// for --workers workers to register, plans from what they measured (parallel/cluster_planner.h),
// hands each its part and the job, watches their heartbeats, and prints the plan, the generated
// output and the job's figures. Exit 0: finished; 2: a worker was lost or the plan was refused.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "launch/cmd_coordinator.h"
#include "launch/commands.h"
#include "launch/engine.h"
#include "parallel/cluster_planner.h"
#include "parallel/layer_planner.h"
#include "runtime/core/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace moe::cli {

namespace fs = std::filesystem;

double stored_bytes_per_param(const std::string& model_dir, const ModelConfig& c) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& f : fs::recursive_directory_iterator(model_dir, ec)) {
    if (!f.is_regular_file(ec)) continue;
    const std::string ext = f.path().extension().string();
    if (ext == ".json" || ext == ".txt" || ext == ".md" || ext == ".model") continue;
    bytes += f.file_size(ec);
  }
  const parallel::LayerParams p = parallel::layer_params(c);
  double params = static_cast<double>(p.first_extra + p.last_extra);
  for (const int64_t n : p.layers) params += static_cast<double>(n);
  MOE_CHECK(bytes > 0 && params > 0, model_dir, ": no weight files found");
  return static_cast<double>(bytes) / params;
}

CoordinatedRun run_coordinated(const CoordinatorOptions& o, bool print) {
  const ModelConfig config = load_model_config(o.model_dir);
  const parallel::ModelBytes bytes = parallel::model_bytes(config, stored_bytes_per_param(o.model_dir, config));
  CoordinatedRun run;
  std::mutex mu;
  coordinator::ServerOptions s;
  s.listen_address = o.listen;
  s.expected_workers = o.workers;
  s.heartbeat_interval = o.heartbeat;
  s.token = o.token;
  s.tls_cert_path = o.tls_cert;
  s.tls_key_path = o.tls_key;
  s.job = o.job;
  s.planner = [&](std::span<const parallel::WorkerInfo> workers) {
    parallel::PlanRequest r;
    r.tp = o.tp, r.pp = o.pp, r.ep = o.ep;
    r.ram_reserve = o.ram_reserve;
    parallel::ClusterPlan plan = parallel::plan_cluster(bytes, config, workers, r);
    std::lock_guard lock(mu);
    run.plan = plan;
    run.workers.assign(workers.begin(), workers.end());
    if (print) std::fprintf(stderr, "coordinator: plan\n%s", plan.describe(workers).c_str());
    return plan;
  };
  if (!print) s.log = [](const std::string&) {};
  coordinator::CoordinatorServer server(std::move(s));
  server.start();
  run.address = server.address();
  if (o.on_listening) o.on_listening(run.address);
  std::optional<coordinator::Outcome> out = server.wait_for_outcome(o.timeout);
  if (!out) {
    server.stop();
    out = server.wait_for_outcome(std::chrono::milliseconds(0));
  }
  server.stop();
  run.outcome = *out;
  return run;
}

namespace {

struct CoordinatorCmd {
  CoordinatorOptions run;
  std::string prompt, tokens, json;
  int64_t max_new_tokens = 32;
  int heartbeat_ms = 500;
  double timeout_s = 600;
};

int coordinate(CoordinatorCmd& c) {
  c.run.job.model_dir = fs::absolute(c.run.model_dir).string();
  c.run.job.max_new_tokens = static_cast<int32_t>(c.max_new_tokens);
  if (!c.prompt.empty()) {
    const Tokenizer t = Tokenizer::load(c.run.model_dir);
    c.run.job.prompt_token_ids = t.encode(c.prompt, /*add_special_tokens=*/true);
  } else {
    c.run.job.prompt_token_ids = parse_token_list(c.tokens);
  }
  c.run.heartbeat = std::chrono::milliseconds(c.heartbeat_ms);
  c.run.timeout = std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000));
  const CoordinatedRun r = run_coordinated(c.run, true);
  const coordinator::Outcome& out = r.outcome;
  if (out.result) {
    const coordinator::JobResult& res = *out.result;
    if (!res.text.empty()) {
      std::printf("%s\n", res.text.c_str());
    } else {
      for (const int32_t id : res.token_ids) std::printf("%d ", id);
      std::printf("\n");
    }
  }
  std::fflush(stdout);
  std::fprintf(stderr, "coordinator: %s: %s\n", coordinator::to_string(out.kind), out.reason.c_str());
  std::fprintf(stderr, "%s", out.metrics.describe().c_str());
  if (!c.json.empty()) {
    nlohmann::json j;
    j["outcome"] = coordinator::to_string(out.kind);
    j["reason"] = out.reason;
    j["tokens_per_s"] = out.metrics.tokens_per_s;
    j["bubble_fraction"] = out.metrics.bubble_fraction;
    j["comm_wait_fraction"] = out.metrics.comm_wait_fraction;
    j["layers"] = r.plan.layers_spec();
    j["workers"] = r.workers.size();
    if (out.kind == coordinator::Outcome::Kind::worker_lost) j["detected_after_s"] = out.silent_seconds;
    if (out.result) j["token_ids"] = out.result->token_ids;
    std::ofstream(c.json) << j.dump(2) << "\n";
  }
  return out.kind == coordinator::Outcome::Kind::finished ? 0 : 2;
}

}  // namespace

Action add_coordinator_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "coordinator",
      "Coordinate a job over workers (docs/coordinator.md): waits for --workers `moe worker`s, plans\n"
      "layer ranges from what they measured, watches their heartbeats, prints the output and figures.");
  auto c = std::make_shared<CoordinatorCmd>();
  cmd->add_option("--listen", c->run.listen, "Address to listen on (loopback unless told otherwise)")
      ->capture_default_str();
  cmd->add_option("--model", c->run.model_dir, "The model directory (the same path on every worker)")->required();
  cmd->add_option("--workers", c->run.workers, "Workers to wait for")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tp", c->run.tp, "Tensor-parallel ranks per stage (0: planned)")->capture_default_str();
  cmd->add_option("--pp", c->run.pp, "Pipeline stages (0: planned)")->capture_default_str();
  cmd->add_option("--ep", c->run.ep, "Expert-parallel ranks per stage (0: planned)")->capture_default_str();
  auto* prompt = cmd->add_option("--prompt,-p", c->prompt, "Prompt text (the model's tokenizer.json)");
  auto* tokens = cmd->add_option("--tokens", c->tokens, "Prompt as comma-separated token ids");
  prompt->excludes(tokens);
  cmd->add_option("--max-new-tokens,-n", c->max_new_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--token", c->run.token, "Shared secret every worker must present (or MOE_COORDINATOR_TOKEN)");
  cmd->add_option("--tls-cert", c->run.tls_cert, "PEM server certificate chain (with --tls-key): TLS");
  cmd->add_option("--tls-key", c->run.tls_key, "PEM private key of --tls-cert");
  cmd->add_option("--heartbeat-ms", c->heartbeat_ms, "Heartbeat interval; a worker silent for 2 is lost")
      ->capture_default_str();
  cmd->add_option("--timeout", c->timeout_s, "Give up after this many seconds")->capture_default_str();
  cmd->add_option("--json", c->json, "Write the outcome and figures to FILE as JSON");
  return [c, prompt, tokens] {
    if (prompt->count() == 0 && tokens->count() == 0)
      fail("moe coordinator: give the job's prompt with --prompt or --tokens");
    if (c->run.token.empty())
      if (const char* t = std::getenv("MOE_COORDINATOR_TOKEN")) c->run.token = t;
    return coordinate(*c);
  };
}

}  // namespace moe::cli
