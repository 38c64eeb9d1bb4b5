// The coordinator's side of the control plane (proto/coordinator.proto, service Coordinator):
// workers register, the planner runs once all expected workers are in, each worker fetches its
// assignment with the plan and the job, heartbeats, reports metrics, and world rank 0 reports the
// result. A watchdog declares a worker lost after 2 silent heartbeat intervals (any call from the
// worker counts as a sign of life, and a worker waiting in GetPlan is not silent); from then on
// every other worker's heartbeat is answered STOP with a reason naming it. The job ends in one Outcome
// (finished, worker_lost, plan_failed, stopped); the first one reached is final.
//
// Security: a non-loopback listen address needs a token or TLS. With a token every call must carry
// `authorization: Bearer <token>` (else UNAUTHENTICATED, and one line on the log). With TLS the
// channel is encrypted (server certificate only: clients are told apart by the token).
//
// No gRPC header is included here; the data plane and the `moe coordinator` command use this API.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "launch/coordinator/control_types.h"
#include "launch/coordinator/metrics_summary.h"
#include "parallel/cluster_plan.h"

namespace moe::coordinator {

// Makes the plan from the workers (in mpi_rank order; workers started by hand, rank -1, last, in
// registration order). WorkerAssignment::worker indexes that span. May throw
// parallel::InfeasiblePlan or moe::Error: the job then ends plan_failed with that message, and every
// GetPlan fails with FAILED_PRECONDITION carrying it. Runs on its own thread, once.
using Planner = std::function<parallel::ClusterPlan(std::span<const parallel::WorkerInfo>)>;

struct ServerOptions {
  std::string listen_address = "127.0.0.1:0";  // port 0: any free port (CoordinatorServer::port())
  int expected_workers = 1;                    // the planner runs when this many have registered
  std::chrono::milliseconds heartbeat_interval{500};
  std::string token;          // shared secret; empty: none (then only a loopback address is allowed)
  std::string tls_cert_path;  // PEM server certificate chain and private key: both or neither
  std::string tls_key_path;
  Planner planner;  // required
  Job job;          // validated (validate(Job))
  // Receives one line per event (listening, registered, plan, outcome, refused calls); default
  // stderr. May be called with the server's lock held: it must not call back into the server.
  std::function<void(const std::string&)> log;
};

// A worker as the outcome names it.
struct WorkerRef {
  std::string id;
  std::string host;
  int mpi_rank = -1;
  int world_rank = -1;  // -1: no plan yet
};

struct Outcome {
  enum class Kind { finished, worker_lost, plan_failed, stopped };
  Kind kind = Kind::stopped;
  // One line, also what the workers' STOP carries: "worker w1-3fa2c1 (host b, mpi rank 1, world
  // rank 1) lost: no heartbeat for 0.42 s (2 intervals of 0.2 s)", "job finished: ...", the
  // planner's message, "stopped by ipv4:127.0.0.1:5xxxx: <reason>".
  std::string reason;
  std::optional<WorkerRef> worker;  // worker_lost: the lost one; finished: the one that reported
  double silent_seconds = 0;        // worker_lost: since its last sign of life
  std::optional<JobResult> result;  // finished
  MetricsSummary metrics;           // as aggregated when wait_for_outcome returned
  std::chrono::steady_clock::time_point decided_at;
};
const char* to_string(Outcome::Kind kind);

class CoordinatorServer {
 public:
  // Validates the options and throws moe::Error: a non-loopback address without a token or TLS
  // (naming --token and --tls-cert), no planner, expected_workers < 1, a heartbeat interval below
  // 10 ms, half a TLS pair, an invalid job.
  explicit CoordinatorServer(ServerOptions options);
  // stop(0 ms).
  ~CoordinatorServer();
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  // Binds and starts serving (and the watchdog). Throws moe::Error when the address cannot be bound
  // or a TLS file cannot be read. Once only.
  void start();
  // The bound port (after start), and listen_address with that port: what workers connect to.
  int port() const;
  std::string address() const;

  // Blocks until the job has an outcome or `timeout` passes (then nullopt). Callable repeatedly and
  // from any thread; every call returns the same outcome with metrics aggregated at that time.
  std::optional<Outcome> wait_for_outcome(std::chrono::milliseconds timeout);
  // Aggregated metrics so far.
  MetricsSummary metrics() const;
  int registered_workers() const;

  // Ends the job (outcome stopped, "coordinator stopped", unless it already has one), then waits up
  // to `grace` for every live worker to receive STOP on a heartbeat, then shuts the server down and
  // joins its threads. nullopt: two heartbeat intervals. Idempotent.
  void stop(std::optional<std::chrono::milliseconds> grace = std::nullopt);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe::coordinator
