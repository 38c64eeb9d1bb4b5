// The worker's side of the control plane (proto/coordinator.proto): connect, register, fetch the
// plan and the job, report ready, heartbeat on a thread of its own, report per-step metrics and,
// on world rank 0, the result. Every failed call throws RpcError with the coordinator's message.
//
// The order a worker follows:
//   auto c = WorkerClient::connect({.address = "10.0.0.1:7000", .token = secret});
//   c->register_worker(info);
//   c->start_heartbeats(on_stop);       // right away: 2 silent intervals and the worker is lost,
//                                       // and loading the model takes longer than that
//   WorkerPlan p = c->get_plan(10min);  // waits for every worker and the planner
//   ... load the assigned layers ...; c->report_ready();
//   ... run, c->set_progress(...), c->report_metrics(steps) ...
//   rank 0: c->report_result(result);   // then every worker's next heartbeat says STOP (finished)
#pragma once

#include <grpcpp/support/status_code_enum.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "launch/coordinator/control_types.h"
#include "parallel/cluster_plan.h"
#include "runtime/core/error.h"

namespace moe::coordinator {

// A call that failed: the gRPC status code, and a message naming the coordinator, the call and
// what the coordinator said ("coordinator at 127.0.0.1:7000: Register: UNAUTHENTICATED: wrong token: ...").
class RpcError : public Error {
 public:
  RpcError(grpc::StatusCode code, const std::string& what) : Error(what), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

struct ConnectOptions {
  std::string address;  // "host:port", as CoordinatorServer::address() says
  std::string token;    // the coordinator's shared secret; empty: none
  // PEM certificate(s) to trust: connect with TLS. Empty: plaintext.
  std::string tls_root_cert_path;
  // The name checked against the server certificate instead of the address's host (certificates
  // issued for a name, reached by IP address). Empty: the host.
  std::string tls_target_name;
  std::chrono::milliseconds connect_timeout{10000};  // connect() waits this long for the channel
  std::chrono::milliseconds rpc_timeout{10000};      // deadline of each call but GetPlan's and Heartbeat's
};

struct Registration {
  std::string worker_id;
  std::chrono::milliseconds heartbeat_interval{0};
  int expected_workers = 0;
};

// This worker's share of the job.
struct WorkerPlan {
  int worker_index = 0;                       // into workers (and WorkerAssignment::worker)
  parallel::WorkerAssignment assignment;      // this worker's
  parallel::ClusterPlan plan;                 // everyone's, validated (validate_plan)
  std::vector<parallel::WorkerInfo> workers;  // the planner's order, with ids
  Job job;
};

// Why the heartbeat thread stopped the worker.
struct StopNotice {
  enum class Cause {
    finished,                 // the job completed (rank 0 reported the result)
    stopped,                  // the coordinator said STOP: a worker was lost, an admin stopped the job, ...
    coordinator_unreachable,  // no answer for 2 heartbeat intervals, or the coordinator refused a heartbeat
  };
  Cause cause = Cause::stopped;
  std::string reason;  // the coordinator's, or "coordinator at ADDR unreachable for 1.0 s (...)"
};

class WorkerClient {
 public:
  // Opens the channel (TLS when tls_root_cert_path is set) and waits up to connect_timeout for it.
  // Throws RpcError (UNAVAILABLE) when the coordinator cannot be reached, moe::Error for an
  // unreadable certificate or an empty address.
  static std::unique_ptr<WorkerClient> connect(const ConnectOptions& options);
  // Stops the heartbeat thread (stop_heartbeats()).
  ~WorkerClient();
  WorkerClient(const WorkerClient&) = delete;
  WorkerClient& operator=(const WorkerClient&) = delete;

  // Joins the job; once per client. Throws RpcError (UNAUTHENTICATED, FAILED_PRECONDITION for a
  // protocol mismatch or a full job, INVALID_ARGUMENT naming a bad field, ALREADY_EXISTS for a
  // duplicate mpi rank).
  Registration register_worker(const parallel::WorkerInfo& info);
  // Long-polls until the plan is ready or `timeout` passes. Throws RpcError: FAILED_PRECONDITION
  // with the planner's message when it refused the job, ABORTED when the job ended first,
  // DEADLINE_EXCEEDED ("no plan from the coordinator at ADDR after 5.0 s: 1 of 2 workers
  // registered"); moe::Error when the plan it sent is unusable.
  WorkerPlan get_plan(std::chrono::milliseconds timeout);
  // Returns how many workers are ready so far.
  int report_ready();

  // Starts the heartbeat thread: one Heartbeat per interval, each with a deadline of one interval,
  // carrying the latest set_progress(). `on_stop` is called once, from that thread, when the
  // coordinator answers STOP or cannot be reached for 2 intervals; the thread then ends. Do not
  // destroy the client from inside on_stop. Once per client, after register_worker.
  void start_heartbeats(std::function<void(const StopNotice&)> on_stop);
  // Ends the heartbeat thread without calling on_stop (the coordinator then declares this worker
  // lost after 2 intervals). Idempotent.
  void stop_heartbeats();
  // The snapshot the next heartbeats carry. Thread-safe.
  void set_progress(const Progress& progress);
  // When the last heartbeat was answered (nullopt before the first).
  std::optional<std::chrono::steady_clock::time_point> last_heartbeat() const;

  // Adds to this worker's totals. Report before report_result: the outcome's metrics are
  // aggregated when the coordinator's wait_for_outcome returns.
  void report_metrics(std::span<const StepMetrics> steps);
  // World rank 0 only (else FAILED_PRECONDITION); ends the job as finished.
  void report_result(const JobResult& result);

  const std::string& address() const;
  const std::string& worker_id() const;  // empty before register_worker

 private:
  class Impl;
  explicit WorkerClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The admin call: asks the coordinator to stop the job; every worker's next heartbeat says STOP
// with `reason`. Returns the outcome line (this stop, or how the job had already ended). Throws
// RpcError.
std::string request_stop(const ConnectOptions& options, const std::string& reason);

}  // namespace moe::coordinator
