// One coordinated job, as `moe coordinator` and `moe scale` run it: a CoordinatorServer with the
// cluster planner over the model, waiting for the workers and for the job's outcome.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "launch/coordinator/coordinator_service.h"
#include "parallel/cluster_plan.h"

namespace moe::cli {

struct CoordinatorOptions {
  std::string listen = "127.0.0.1:0";
  std::string model_dir;
  int workers = 1;
  int tp = 0, pp = 0, ep = 0;  // 0: planned
  uint64_t ram_reserve = uint64_t{256} << 20;
  std::string token, tls_cert, tls_key;
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds timeout{600000};
  coordinator::Job job;
  std::function<void(const std::string& address)> on_listening;  // once bound (launch the workers here)
};

struct CoordinatedRun {
  std::string address;
  parallel::ClusterPlan plan;
  std::vector<parallel::WorkerInfo> workers;
  coordinator::Outcome outcome;
};

// Stored weight bytes per parameter of the model directory (files other than JSON and text,
// over the parameters its config counts): what the planner sizes the shares with.
double stored_bytes_per_param(const std::string& model_dir, const ModelConfig& c);

// Runs the coordinator until the job has an outcome (or o.timeout: then stopped). `print`: the
// plan and the server's log lines on stderr.
CoordinatedRun run_coordinated(const CoordinatorOptions& o, bool print);

}  // namespace moe::cli
