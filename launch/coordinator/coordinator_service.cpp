#include "launch/coordinator/coordinator_service.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "launch/coordinator/proto_convert.h"
#include "launch/coordinator/security.h"
#include "proto/coordinator.grpc.pb.h"
#include "runtime/core/error.h"

namespace moe::coordinator {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string fixed(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string short_seconds(std::chrono::milliseconds ms) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

std::string random_hex(int digits) {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string s;
  for (int i = 0; i < digits; ++i) s += "0123456789abcdef"[hex(rd)];
  return s;
}

struct WorkerRecord {
  parallel::WorkerInfo info;  // id set by Register
  std::string peer;
  Clock::time_point last_seen;  // any call from the worker counts
  int polling = 0;              // GetPlan calls in progress: a worker waiting on us is alive
  int plan_index = -1;          // its index among the planner's workers
  bool ready = false;
  bool told_stop = false;  // a heartbeat answer said STOP
  bool lost = false;
  Progress progress;
  StepTotals totals;
};

}  // namespace

const char* to_string(Outcome::Kind kind) {
  switch (kind) {
    case Outcome::Kind::finished: return "finished";
    case Outcome::Kind::worker_lost: return "worker_lost";
    case Outcome::Kind::plan_failed: return "plan_failed";
    case Outcome::Kind::stopped: return "stopped";
  }
  return "?";
}

class CoordinatorServer::Impl final : public v1::Coordinator::Service {
 public:
  explicit Impl(ServerOptions options) : opt_(std::move(options)), session_(random_hex(6)) {
    MOE_CHECK(opt_.planner, "coordinator: no planner given");
    MOE_CHECK(opt_.expected_workers >= 1, "coordinator: expected workers is ", opt_.expected_workers, ": must be >= 1");
    MOE_CHECK(opt_.heartbeat_interval >= std::chrono::milliseconds(10), "coordinator: heartbeat interval ",
              opt_.heartbeat_interval.count(), " ms: must be >= 10 ms");
    MOE_CHECK(opt_.tls_cert_path.empty() == opt_.tls_key_path.empty(),
              "coordinator: TLS needs both a certificate (--tls-cert) and its private key (--tls-key)");
    MOE_CHECK(!opt_.listen_address.empty(), "coordinator: empty listen address");
    const bool tls = !opt_.tls_cert_path.empty();
    if (!is_loopback_address(opt_.listen_address) && opt_.token.empty() && !tls) {
      fail("coordinator: refusing to listen on ", opt_.listen_address,
           " without a token or TLS: any host that reaches it could join or stop the job. Pass --token SECRET "
           "(workers pass the same), or --tls-cert/--tls-key, or listen on 127.0.0.1");
    }
    validate(opt_.job);
    if (!opt_.log) opt_.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    expected_bearer_ = bearer(opt_.token);
  }

  ~Impl() override { stop(std::chrono::milliseconds(0)); }

  void start() {
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!opt_.tls_cert_path.empty()) {
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back(
          {read_pem_file(opt_.tls_key_path, "--tls-key"), read_pem_file(opt_.tls_cert_path, "--tls-cert")});
      creds = grpc::SslServerCredentials(ssl);
    }
    std::lock_guard lock(mu_);
    MOE_CHECK(!server_ && !stop_called_, "coordinator: start() called twice or after stop()");
    grpc::ServerBuilder builder;
    builder.AddListeningPort(opt_.listen_address, creds, &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    MOE_CHECK(server_ && port_ > 0, "coordinator: cannot listen on ", opt_.listen_address,
              ": the port is in use or the address is not one of this host's");
    watchdog_ = std::thread([this] { watch(); });
    log(str_cat("coordinator: listening on ", address_locked(), " for ", opt_.expected_workers, " worker",
                opt_.expected_workers == 1 ? "" : "s", " (heartbeat every ", short_seconds(opt_.heartbeat_interval),
                " s", opt_.tls_cert_path.empty() ? "" : ", TLS", opt_.token.empty() ? "" : ", token", ")"));
  }

  int port() const {
    std::lock_guard lock(mu_);
    return port_;
  }

  std::string address() const {
    std::lock_guard lock(mu_);
    return address_locked();
  }

  std::optional<Outcome> wait_for_outcome(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return outcome_.has_value(); })) return std::nullopt;
    Outcome o = *outcome_;
    o.metrics = metrics_locked();
    return o;
  }

  MetricsSummary metrics() const {
    std::lock_guard lock(mu_);
    return metrics_locked();
  }

  int registered_workers() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(workers_.size());
  }

  void stop(std::chrono::milliseconds grace) {
    {
      std::unique_lock lock(mu_);
      if (stop_called_) return;
      stop_called_ = true;
      if (!outcome_) decide_locked(Outcome::Kind::stopped, "coordinator stopped before the job ended");
      cv_.wait_for(lock, grace, [&] {
        return std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w.told_stop || w.lost; });
      });
      shutting_down_ = true;
    }
    cv_.notify_all();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    if (watchdog_.joinable()) watchdog_.join();
    if (planner_.joinable()) planner_.join();
  }

  std::chrono::milliseconds heartbeat_interval() const { return opt_.heartbeat_interval; }

  // ---- RPCs ------------------------------------------------------------------------------------

  grpc::Status Register(grpc::ServerContext* ctx, const v1::RegisterRequest* req, v1::RegisterResponse* resp) override {
    if (grpc::Status s = admit(ctx, "Register", req->protocol_version()); !s.ok()) return s;
    if (!req->has_worker()) return invalid("Register", "worker is missing");
    parallel::WorkerInfo info;
    try {
      info = from_proto(req->worker());
    } catch (const Error& e) {
      return invalid("Register", e.what());
    }
    if (!info.id.empty()) {
      return invalid("Register", str_cat("worker.id is '", info.id, "': the coordinator chooses ids, leave it empty"));
    }
    std::lock_guard lock(mu_);
    if (outcome_) return {grpc::StatusCode::ABORTED, str_cat("Register: the job is over: ", outcome_->reason)};
    if (workers_.size() >= static_cast<size_t>(opt_.expected_workers)) {
      return {
          grpc::StatusCode::FAILED_PRECONDITION,
          str_cat("Register: this coordinator expects ", opt_.expected_workers, " workers and all have registered")};
    }
    for (const auto& w : workers_) {
      if (info.mpi_rank >= 0 && w.info.mpi_rank == info.mpi_rank) {
        return {grpc::StatusCode::ALREADY_EXISTS,
                str_cat("Register: mpi rank ", info.mpi_rank, " is already registered by worker ", w.info.id, " (host ",
                        w.info.host, ")")};
      }
    }
    WorkerRecord w;
    w.info = std::move(info);
    w.info.id = str_cat("w", workers_.size(), "-", session_);
    w.peer = ctx->peer();
    w.last_seen = Clock::now();
    by_id_[w.info.id] = workers_.size();
    workers_.push_back(w);
    log(str_cat("coordinator: worker ", w.info.id, " registered from ", w.peer, " (host ", w.info.host, ", mpi rank ",
                w.info.mpi_rank, "): ", workers_.size(), " of ", opt_.expected_workers));
    if (workers_.size() == static_cast<size_t>(opt_.expected_workers)) {
      planner_ = std::thread([this] { run_planner(); });
    }
    resp->set_worker_id(w.info.id);
    resp->set_heartbeat_interval_ms(static_cast<uint32_t>(opt_.heartbeat_interval.count()));
    resp->set_expected_workers(static_cast<uint32_t>(opt_.expected_workers));
    return grpc::Status::OK;
  }

  grpc::Status GetPlan(grpc::ServerContext* ctx, const v1::GetPlanRequest* req, v1::GetPlanResponse* resp) override {
    if (grpc::Status s = admit(ctx, "GetPlan", req->protocol_version()); !s.ok()) return s;
    std::unique_lock lock(mu_);
    size_t wi = 0;
    if (grpc::Status s = find_worker_locked(req->worker_id(), "GetPlan", &wi); !s.ok()) return s;
    // Long poll: until the plan or an outcome, wait_ms (default 10 s, at most 60 s) or just before the
    // caller's deadline, whichever comes first.
    const auto wait =
        std::chrono::milliseconds(req->wait_ms() == 0 ? 10000 : std::min<uint32_t>(req->wait_ms(), 60000));
    Clock::time_point until = Clock::now() + wait;
    const auto left = ctx->deadline() - std::chrono::system_clock::now();
    if (left < std::chrono::hours(24)) {
      until = std::min(
          until, Clock::now() + std::chrono::duration_cast<Clock::duration>(left) - std::chrono::milliseconds(20));
    }
    workers_[wi].polling += 1;
    while (!plan_ && !outcome_ && !shutting_down_ && Clock::now() < until && !ctx->IsCancelled()) {
      cv_.wait_until(lock, std::min(until, Clock::now() + std::chrono::milliseconds(100)));
    }
    workers_[wi].polling -= 1;
    workers_[wi].last_seen = Clock::now();
    if (outcome_ && outcome_->kind == Outcome::Kind::plan_failed) {
      return {grpc::StatusCode::FAILED_PRECONDITION, outcome_->reason};
    }
    if (outcome_) return {grpc::StatusCode::ABORTED, str_cat("GetPlan: the job is over: ", outcome_->reason)};
    if (shutting_down_) return {grpc::StatusCode::UNAVAILABLE, "GetPlan: the coordinator is shutting down"};
    resp->set_registered_workers(static_cast<uint32_t>(workers_.size()));
    resp->set_expected_workers(static_cast<uint32_t>(opt_.expected_workers));
    if (!plan_) return grpc::Status::OK;  // ready = false: ask again
    const int index = workers_[wi].plan_index;
    resp->set_ready(true);
    resp->set_worker_index(index);
    for (const auto& a : plan_->assignments) {
      if (a.worker == index) to_proto(a, resp->mutable_assignment());
    }
    to_proto(*plan_, resp->mutable_plan());
    for (size_t r : order_) to_proto(workers_[r].info, resp->add_workers());
    to_proto(opt_.job, resp->mutable_job());
    return grpc::Status::OK;
  }

  grpc::Status ReportReady(grpc::ServerContext* ctx, const v1::ReportReadyRequest* req,
                           v1::ReportReadyResponse* resp) override {
    if (grpc::Status s = admit(ctx, "ReportReady", req->protocol_version()); !s.ok()) return s;
    std::lock_guard lock(mu_);
    size_t wi = 0;
    if (grpc::Status s = find_worker_locked(req->worker_id(), "ReportReady", &wi); !s.ok()) return s;
    if (outcome_) return {grpc::StatusCode::ABORTED, str_cat("ReportReady: the job is over: ", outcome_->reason)};
    if (!plan_) return {grpc::StatusCode::FAILED_PRECONDITION, "ReportReady: there is no plan yet: GetPlan first"};
    workers_[wi].ready = true;
    const auto ready = std::count_if(workers_.begin(), workers_.end(), [](const auto& w) { return w.ready; });
    if (ready == opt_.expected_workers) log(str_cat("coordinator: all ", ready, " workers ready"));
    resp->set_ready_workers(static_cast<uint32_t>(ready));
    resp->set_expected_workers(static_cast<uint32_t>(opt_.expected_workers));
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override {
    if (grpc::Status s = admit(ctx, "Heartbeat", req->protocol_version()); !s.ok()) return s;
    Progress progress;
    try {
      progress = from_proto(req->progress());
    } catch (const Error& e) {
      return invalid("Heartbeat", e.what());
    }
    bool notify = false;
    {
      std::lock_guard lock(mu_);
      size_t wi = 0;
      if (grpc::Status s = find_worker_locked(req->worker_id(), "Heartbeat", &wi); !s.ok()) return s;
      WorkerRecord& w = workers_[wi];
      w.progress = progress;
      if (!outcome_) {
        resp->set_instruction(v1::INSTRUCTION_CONTINUE);
        return grpc::Status::OK;
      }
      resp->set_instruction(v1::INSTRUCTION_STOP);
      resp->set_reason(w.lost ? str_cat("this worker was declared lost: ", outcome_->reason) : outcome_->reason);
      resp->set_finished(outcome_->kind == Outcome::Kind::finished);
      notify = !w.told_stop;
      w.told_stop = true;
    }
    if (notify) cv_.notify_all();  // stop() waits for every worker to hear STOP
    return grpc::Status::OK;
  }

  grpc::Status ReportMetrics(grpc::ServerContext* ctx, const v1::ReportMetricsRequest* req,
                             v1::ReportMetricsResponse* resp) override {
    if (grpc::Status s = admit(ctx, "ReportMetrics", req->protocol_version()); !s.ok()) return s;
    StepTotals add;
    for (int i = 0; i < req->steps_size(); ++i) {
      try {
        add += from_proto(req->steps(i));
      } catch (const Error& e) {
        return invalid("ReportMetrics", str_cat("steps[", i, "]: ", e.what()));
      }
    }
    std::lock_guard lock(mu_);
    size_t wi = 0;
    if (grpc::Status s = find_worker_locked(req->worker_id(), "ReportMetrics", &wi); !s.ok()) return s;
    workers_[wi].totals += add;
    resp->set_steps_recorded(workers_[wi].totals.steps);
    return grpc::Status::OK;
  }

  grpc::Status ReportResult(grpc::ServerContext* ctx, const v1::ReportResultRequest* req,
                            v1::ReportResultResponse*) override {
    if (grpc::Status s = admit(ctx, "ReportResult", req->protocol_version()); !s.ok()) return s;
    JobResult result;
    try {
      result = from_proto(*req);
    } catch (const Error& e) {
      return invalid("ReportResult", e.what());
    }
    {
      std::lock_guard lock(mu_);
      size_t wi = 0;
      if (grpc::Status s = find_worker_locked(req->worker_id(), "ReportResult", &wi); !s.ok()) return s;
      if (outcome_ && outcome_->kind == Outcome::Kind::finished) {
        return {grpc::StatusCode::ALREADY_EXISTS, "ReportResult: the result was already reported"};
      }
      if (outcome_) return {grpc::StatusCode::ABORTED, str_cat("ReportResult: the job is over: ", outcome_->reason)};
      if (!plan_) return {grpc::StatusCode::FAILED_PRECONDITION, "ReportResult: there is no plan yet"};
      const WorkerRef ref = ref_locked(wi);
      if (ref.world_rank != 0) {
        return {grpc::StatusCode::FAILED_PRECONDITION,
                str_cat("ReportResult: worker ", ref.id, " is world rank ", ref.world_rank,
                        ": only world rank 0 reports the result")};
      }
      const size_t n = result.token_ids.size();
      decide_locked(Outcome::Kind::finished, str_cat("job finished: world rank 0 (worker ", ref.id, ") reported ", n,
                                                     " token", n == 1 ? "" : "s"));
      outcome_->worker = ref;
      outcome_->result = std::move(result);
    }
    cv_.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status Stop(grpc::ServerContext* ctx, const v1::StopRequest* req, v1::StopResponse* resp) override {
    if (grpc::Status s = admit(ctx, "Stop", req->protocol_version()); !s.ok()) return s;
    {
      std::lock_guard lock(mu_);
      resp->set_already_over(outcome_.has_value());
      if (!outcome_) {
        decide_locked(Outcome::Kind::stopped, str_cat("stopped by ", ctx->peer(), ": ",
                                                      req->reason().empty() ? "no reason given" : req->reason()));
      }
      resp->set_outcome(outcome_->reason);
    }
    cv_.notify_all();
    return grpc::Status::OK;
  }

 private:
  void log(const std::string& line) const { opt_.log(line); }

  static grpc::Status invalid(const char* method, const std::string& what) {
    return {grpc::StatusCode::INVALID_ARGUMENT, str_cat(method, ": ", what)};
  }

  // The token (when set) and the protocol version, before anything else is looked at.
  grpc::Status admit(grpc::ServerContext* ctx, const char* method, uint32_t version) const {
    if (!opt_.token.empty()) {
      const auto& md = ctx->client_metadata();
      const auto it = md.find(kAuthorizationKey);
      const char* why = nullptr;
      if (it == md.end()) {
        why = "no token";
      } else if (!constant_time_equal(std::string_view(it->second.data(), it->second.size()), expected_bearer_)) {
        why = "wrong token";
      }
      if (why) {
        log(str_cat("coordinator: refused ", method, " from ", ctx->peer(), ": ", why));
        return {grpc::StatusCode::UNAUTHENTICATED,
                str_cat(method, ": ", why,
                        ": this coordinator needs the metadata 'authorization: Bearer <token>' (--token)")};
      }
    }
    if (version != kProtocolVersion) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              str_cat(method, ": protocol version ", version,
                      " is not supported: this coordinator speaks protocol version ", kProtocolVersion,
                      " (use a worker from the same moe-runtime release)")};
    }
    return grpc::Status::OK;
  }

  // mu_ held. Finds the worker and counts the call as a sign of life.
  grpc::Status find_worker_locked(const std::string& id, const char* method, size_t* index) {
    if (id.empty()) return invalid(method, "worker_id is empty: Register first");
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      return {grpc::StatusCode::NOT_FOUND,
              str_cat(method, ": unknown worker id '", id, "': not registered with this coordinator (Register first)")};
    }
    *index = it->second;
    workers_[it->second].last_seen = Clock::now();
    return grpc::Status::OK;
  }

  // mu_ held.
  WorkerRef ref_locked(size_t wi) const {
    const WorkerRecord& w = workers_[wi];
    WorkerRef r{w.info.id, w.info.host, w.info.mpi_rank, -1};
    if (plan_) {
      for (const auto& a : plan_->assignments) {
        if (a.worker == w.plan_index) r.world_rank = a.world_rank;
      }
    }
    return r;
  }

  // mu_ held; the first outcome is final. Callers notify cv_ after unlocking.
  void decide_locked(Outcome::Kind kind, std::string reason) {
    if (outcome_) return;
    Outcome o;
    o.kind = kind;
    o.reason = std::move(reason);
    o.decided_at = Clock::now();
    log(str_cat("coordinator: ", to_string(kind), ": ", o.reason));
    outcome_ = std::move(o);
  }

  std::string address_locked() const {
    const std::string& a = opt_.listen_address;
    const size_t colon = a.rfind(':');
    if (a.starts_with("unix") || colon == std::string::npos) return a;
    return str_cat(a.substr(0, colon), ":", port_);
  }

  MetricsSummary metrics_locked() const {
    std::vector<WorkerMetrics> ws;
    for (size_t i = 0; i < workers_.size(); ++i) {
      WorkerMetrics m;
      m.worker_id = workers_[i].info.id;
      m.host = workers_[i].info.host;
      m.totals = workers_[i].totals;
      if (plan_) {
        for (const auto& a : plan_->assignments) {
          if (a.worker == workers_[i].plan_index) {
            m.world_rank = a.world_rank;
            m.pp_rank = a.pp_rank;
          }
        }
      }
      ws.push_back(std::move(m));
    }
    return summarize(ws);
  }

  // The planner's thread: started by the last Register, runs once.
  void run_planner() {
    std::vector<parallel::WorkerInfo> infos;
    {
      std::lock_guard lock(mu_);
      order_.resize(workers_.size());
      for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
      std::stable_sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
        const int ra = workers_[a].info.mpi_rank, rb = workers_[b].info.mpi_rank;
        return (ra < 0) != (rb < 0) ? rb < 0 : ra < rb;
      });
      for (size_t i = 0; i < order_.size(); ++i) {
        workers_[order_[i]].plan_index = static_cast<int>(i);
        infos.push_back(workers_[order_[i]].info);
      }
    }
    std::optional<parallel::ClusterPlan> plan;
    std::string error;
    try {
      plan = opt_.planner(infos);
      validate_plan(*plan, infos.size());
    } catch (const parallel::InfeasiblePlan& e) {
      error = str_cat("no plan for ", infos.size(), " worker", infos.size() == 1 ? "" : "s", ": ", e.what());
      plan.reset();
    } catch (const std::exception& e) {
      error = str_cat("the planner failed for ", infos.size(), " worker", infos.size() == 1 ? "" : "s", ": ", e.what());
      plan.reset();
    }
    {
      std::lock_guard lock(mu_);
      if (plan) {
        plan_ = std::move(plan);
        log(str_cat("coordinator: plan ready: tp ", plan_->tp, ", pp ", plan_->pp, ", ep ", plan_->ep, " over ",
                    infos.size(), " worker", infos.size() == 1 ? "" : "s"));
      } else {
        decide_locked(Outcome::Kind::plan_failed, error);
      }
    }
    cv_.notify_all();
  }

  // The watchdog: a worker silent for more than 2 heartbeat intervals is lost, and the job with it.
  void watch() {
    const auto interval = opt_.heartbeat_interval;
    const auto tick = std::clamp(interval / 20, std::chrono::milliseconds(2), std::chrono::milliseconds(50));
    std::unique_lock lock(mu_);
    while (!shutting_down_) {
      cv_.wait_for(lock, tick);
      if (shutting_down_ || outcome_) continue;
      const auto now = Clock::now();
      for (size_t i = 0; i < workers_.size(); ++i) {
        WorkerRecord& w = workers_[i];
        const auto silent = now - w.last_seen;
        if (w.polling > 0 || silent <= 2 * interval) continue;
        w.lost = true;
        const WorkerRef r = ref_locked(i);
        decide_locked(Outcome::Kind::worker_lost,
                      str_cat("worker ", r.id, " (host ", r.host, ", mpi rank ", r.mpi_rank,
                              r.world_rank >= 0 ? str_cat(", world rank ", r.world_rank) : std::string(),
                              ") lost: no heartbeat for ", fixed(seconds(silent), 2), " s (2 intervals of ",
                              short_seconds(interval), " s)"));
        outcome_->worker = r;
        outcome_->silent_seconds = seconds(silent);
        lock.unlock();
        cv_.notify_all();
        lock.lock();
        break;
      }
    }
  }

  ServerOptions opt_;
  const std::string session_;  // in every worker id: ids of another coordinator's run do not match
  std::string expected_bearer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;                     // any change below
  std::unique_ptr<grpc::Server> server_;           // guarded by mu_ until stop()
  int port_ = 0;                                   // guarded by mu_
  std::vector<WorkerRecord> workers_;              // guarded by mu_; registration order
  std::unordered_map<std::string, size_t> by_id_;  // guarded by mu_; id -> workers_ index
  std::vector<size_t> order_;                      // guarded by mu_; planner order -> workers_ index
  std::optional<parallel::ClusterPlan> plan_;      // guarded by mu_
  std::optional<Outcome> outcome_;                 // guarded by mu_; set once
  bool stop_called_ = false;                       // guarded by mu_
  bool shutting_down_ = false;                     // guarded by mu_
  std::thread watchdog_;
  std::thread planner_;  // started by the last Register (mu_ held), joined by stop()
};

CoordinatorServer::CoordinatorServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
CoordinatorServer::~CoordinatorServer() = default;
void CoordinatorServer::start() {
  impl_->start();
}
int CoordinatorServer::port() const {
  return impl_->port();
}
std::string CoordinatorServer::address() const {
  return impl_->address();
}
std::optional<Outcome> CoordinatorServer::wait_for_outcome(std::chrono::milliseconds timeout) {
  return impl_->wait_for_outcome(timeout);
}
MetricsSummary CoordinatorServer::metrics() const {
  return impl_->metrics();
}
int CoordinatorServer::registered_workers() const {
  return impl_->registered_workers();
}
void CoordinatorServer::stop(std::optional<std::chrono::milliseconds> grace) {
  impl_->stop(grace.value_or(2 * impl_->heartbeat_interval()));
}

}  // namespace moe::coordinator
