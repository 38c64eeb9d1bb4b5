#include "launch/coordinator/worker_client.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "launch/coordinator/proto_convert.h"
#include "launch/coordinator/security.h"
#include "proto/coordinator.grpc.pb.h"

namespace moe::coordinator {
namespace {

using Clock = std::chrono::steady_clock;

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::DO_NOT_USE: return "DO_NOT_USE";
  }
  return "?";
}

std::string one_decimal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// "coordinator at ADDR: Register: UNAUTHENTICATED: wrong token: ..." (the server's messages start
// with the method name already; it is not repeated).
std::string describe(const std::string& address, const char* method, const grpc::Status& s) {
  std::string msg = s.error_message();
  const std::string prefix = str_cat(method, ": ");
  if (msg.starts_with(prefix)) msg.erase(0, prefix.size());
  return str_cat("coordinator at ", address, ": ", method, ": ", code_name(s.error_code()), ": ", msg);
}

std::shared_ptr<grpc::Channel> make_channel(const ConnectOptions& o) {
  MOE_CHECK(!o.address.empty(), "worker: no coordinator address given");
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!o.tls_root_cert_path.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read_pem_file(o.tls_root_cert_path, "--tls-ca");
    creds = grpc::SslCredentials(ssl);
    if (!o.tls_target_name.empty()) args.SetSslTargetNameOverride(o.tls_target_name);
  }
  auto channel = grpc::CreateCustomChannel(o.address, creds, args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + o.connect_timeout)) {
    throw RpcError(grpc::StatusCode::UNAVAILABLE,
                   str_cat("cannot reach the coordinator at ", o.address, " within ",
                           one_decimal(std::chrono::duration<double>(o.connect_timeout).count()), " s",
                           o.tls_root_cert_path.empty() ? "" : " (TLS: check the certificate and its name)"));
  }
  return channel;
}

}  // namespace

class WorkerClient::Impl {
 public:
  explicit Impl(const ConnectOptions& o)
      : opt_(o), bearer_(bearer(o.token)), stub_(v1::Coordinator::NewStub(make_channel(o))) {}

  ~Impl() { stop_heartbeats(); }

  // A context with the token and a deadline.
  void prepare(grpc::ClientContext* ctx, std::chrono::milliseconds deadline) const {
    if (!opt_.token.empty()) ctx->AddMetadata(kAuthorizationKey, bearer_);
    ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  }

  void check(const char* method, const grpc::Status& s) const {
    if (!s.ok()) throw RpcError(s.error_code(), describe(opt_.address, method, s));
  }

  void require_registration(const char* what) const {
    MOE_CHECK(!id_.empty(), "worker: ", what, " before register_worker");
  }

  Registration register_worker(const parallel::WorkerInfo& info) {
    MOE_CHECK(id_.empty(), "worker: already registered as ", id_);
    v1::RegisterRequest req;
    req.set_protocol_version(kProtocolVersion);
    to_proto(info, req.mutable_worker());
    v1::RegisterResponse resp;
    grpc::ClientContext ctx;
    prepare(&ctx, opt_.rpc_timeout);
    check("Register", stub_->Register(&ctx, req, &resp));
    MOE_CHECK(!resp.worker_id().empty() && resp.heartbeat_interval_ms() > 0, "coordinator at ", opt_.address,
              ": Register answered without a worker id or heartbeat interval");
    id_ = resp.worker_id();
    interval_ = std::chrono::milliseconds(resp.heartbeat_interval_ms());
    return Registration{id_, interval_, static_cast<int>(resp.expected_workers())};
  }

  WorkerPlan get_plan(std::chrono::milliseconds timeout) {
    require_registration("get_plan");
    const auto start = Clock::now();
    const auto end = start + timeout;
    uint32_t registered = 0, expected = 0;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left <= std::chrono::milliseconds(0)) break;
      // Each poll: at most 10 s; the coordinator answers a little before the call's deadline.
      const auto poll = std::min(left, std::chrono::milliseconds(10000));
      const auto wait = poll - std::min(poll / 5, std::chrono::milliseconds(500));
      v1::GetPlanRequest req;
      req.set_protocol_version(kProtocolVersion);
      req.set_worker_id(id_);
      req.set_wait_ms(static_cast<uint32_t>(std::max<int64_t>(wait.count(), 1)));
      v1::GetPlanResponse resp;
      grpc::ClientContext ctx;
      prepare(&ctx, poll);
      const grpc::Status s = stub_->GetPlan(&ctx, req, &resp);
      if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) continue;
      check("GetPlan", s);
      registered = resp.registered_workers();
      expected = resp.expected_workers();
      if (resp.ready()) return convert(resp);
    }
    throw RpcError(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        str_cat("no plan from the coordinator at ", opt_.address, " after ", one_decimal(seconds(Clock::now() - start)),
                " s: ", registered, " of ", expected, " workers registered"));
  }

  WorkerPlan convert(const v1::GetPlanResponse& resp) const {
    try {
      WorkerPlan p;
      p.worker_index = resp.worker_index();
      p.assignment = from_proto(resp.assignment());
      p.plan = from_proto(resp.plan());
      for (const auto& w : resp.workers()) p.workers.push_back(from_proto(w));
      p.job = from_proto(resp.job());
      validate_plan(p.plan, p.workers.size());
      MOE_CHECK(p.worker_index >= 0 && static_cast<size_t>(p.worker_index) < p.workers.size() &&
                    p.assignment.worker == p.worker_index,
                "worker index ", p.worker_index, " of ", p.workers.size(), ", assignment for worker ",
                p.assignment.worker);
      return p;
    } catch (const Error& e) {
      fail("coordinator at ", opt_.address, " sent an unusable plan: ", e.what());
    }
  }

  int report_ready() {
    require_registration("report_ready");
    v1::ReportReadyRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_worker_id(id_);
    v1::ReportReadyResponse resp;
    grpc::ClientContext ctx;
    prepare(&ctx, opt_.rpc_timeout);
    check("ReportReady", stub_->ReportReady(&ctx, req, &resp));
    return static_cast<int>(resp.ready_workers());
  }

  void report_metrics(std::span<const StepMetrics> steps) {
    require_registration("report_metrics");
    v1::ReportMetricsRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_worker_id(id_);
    for (const auto& s : steps) to_proto(s, req.add_steps());
    v1::ReportMetricsResponse resp;
    grpc::ClientContext ctx;
    prepare(&ctx, opt_.rpc_timeout);
    check("ReportMetrics", stub_->ReportMetrics(&ctx, req, &resp));
  }

  void report_result(const JobResult& result) {
    require_registration("report_result");
    v1::ReportResultRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_worker_id(id_);
    to_proto(result, &req);
    v1::ReportResultResponse resp;
    grpc::ClientContext ctx;
    prepare(&ctx, opt_.rpc_timeout);
    check("ReportResult", stub_->ReportResult(&ctx, req, &resp));
  }

  // ---- Heartbeats --------------------------------------------------------------------------------

  void start_heartbeats(std::function<void(const StopNotice&)> on_stop) {
    require_registration("start_heartbeats");
    MOE_CHECK(on_stop, "worker: start_heartbeats needs an on_stop callback");
    std::lock_guard lock(mu_);
    MOE_CHECK(!heartbeat_.joinable() && !heartbeats_started_, "worker: heartbeats already started");
    heartbeats_started_ = true;
    heartbeat_ = std::thread([this, cb = std::move(on_stop)] { beat(cb); });
  }

  void stop_heartbeats() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (!heartbeat_.joinable()) return;
    if (heartbeat_.get_id() == std::this_thread::get_id()) {
      heartbeat_.detach();  // called from on_stop: the thread ends when the callback returns
    } else {
      heartbeat_.join();
    }
  }

  void set_progress(const Progress& p) {
    std::lock_guard lock(mu_);
    progress_ = p;
  }

  std::optional<Clock::time_point> last_heartbeat() const {
    std::lock_guard lock(mu_);
    return last_ok_;
  }

  const std::string& address() const { return opt_.address; }
  const std::string& worker_id() const { return id_; }

 private:
  // The heartbeat thread.
  void beat(const std::function<void(const StopNotice&)>& on_stop) {
    auto since = Clock::now();  // the last answer, or the start
    auto next = since;
    for (;;) {
      v1::HeartbeatRequest req;
      req.set_protocol_version(kProtocolVersion);
      req.set_worker_id(id_);
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        to_proto(progress_, req.mutable_progress());
      }
      next += interval_;
      v1::HeartbeatResponse resp;
      grpc::ClientContext ctx;
      prepare(&ctx, interval_);
      const grpc::Status s = stub_->Heartbeat(&ctx, req, &resp);
      const auto now = Clock::now();
      std::optional<StopNotice> notice;
      if (s.ok()) {
        since = now;
        {
          std::lock_guard lock(mu_);
          last_ok_ = now;
        }
        if (resp.instruction() == v1::INSTRUCTION_STOP) {
          notice = StopNotice{resp.finished() ? StopNotice::Cause::finished : StopNotice::Cause::stopped,
                              resp.reason().empty() ? "the coordinator said STOP" : resp.reason()};
        }
      } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                 s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        if (now - since >= 2 * interval_) {
          notice = StopNotice{
              StopNotice::Cause::coordinator_unreachable,
              str_cat("coordinator at ", opt_.address, " unreachable for ", one_decimal(seconds(now - since)), " s (",
                      code_name(s.error_code()), ": ", s.error_message(), ")")};
        }
      } else {
        // It answered, and refused: it no longer knows this worker, or the token changed.
        notice = StopNotice{StopNotice::Cause::coordinator_unreachable, describe(opt_.address, "Heartbeat", s)};
      }
      if (notice) {
        {
          std::lock_guard lock(mu_);
          if (stopping_) return;
        }
        on_stop(*notice);
        return;
      }
      std::unique_lock lock(mu_);
      if (now > next) next = now;  // a slow answer: the next beat goes right away
      if (cv_.wait_until(lock, next, [&] { return stopping_; })) return;
    }
  }

  const ConnectOptions opt_;
  const std::string bearer_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;  // thread-safe
  std::string id_;                               // set once by register_worker, before heartbeats
  std::chrono::milliseconds interval_{0};        // likewise

  mutable std::mutex mu_;
  std::condition_variable cv_;                // stopping_
  bool stopping_ = false;                     // guarded by mu_
  bool heartbeats_started_ = false;           // guarded by mu_
  Progress progress_;                         // guarded by mu_
  std::optional<Clock::time_point> last_ok_;  // guarded by mu_
  std::thread heartbeat_;
};

std::unique_ptr<WorkerClient> WorkerClient::connect(const ConnectOptions& options) {
  return std::unique_ptr<WorkerClient>(new WorkerClient(std::make_unique<Impl>(options)));
}
WorkerClient::WorkerClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WorkerClient::~WorkerClient() = default;
Registration WorkerClient::register_worker(const parallel::WorkerInfo& info) {
  return impl_->register_worker(info);
}
WorkerPlan WorkerClient::get_plan(std::chrono::milliseconds timeout) {
  return impl_->get_plan(timeout);
}
int WorkerClient::report_ready() {
  return impl_->report_ready();
}
void WorkerClient::start_heartbeats(std::function<void(const StopNotice&)> on_stop) {
  impl_->start_heartbeats(std::move(on_stop));
}
void WorkerClient::stop_heartbeats() {
  impl_->stop_heartbeats();
}
void WorkerClient::set_progress(const Progress& progress) {
  impl_->set_progress(progress);
}
std::optional<std::chrono::steady_clock::time_point> WorkerClient::last_heartbeat() const {
  return impl_->last_heartbeat();
}
void WorkerClient::report_metrics(std::span<const StepMetrics> steps) {
  impl_->report_metrics(steps);
}
void WorkerClient::report_result(const JobResult& result) {
  impl_->report_result(result);
}
const std::string& WorkerClient::address() const {
  return impl_->address();
}
const std::string& WorkerClient::worker_id() const {
  return impl_->worker_id();
}

std::string request_stop(const ConnectOptions& options, const std::string& reason) {
  auto stub = v1::Coordinator::NewStub(make_channel(options));
  v1::StopRequest req;
  req.set_protocol_version(kProtocolVersion);
  req.set_reason(reason);
  v1::StopResponse resp;
  grpc::ClientContext ctx;
  if (!options.token.empty()) ctx.AddMetadata(kAuthorizationKey, bearer(options.token));
  ctx.set_deadline(std::chrono::system_clock::now() + options.rpc_timeout);
  const grpc::Status s = stub->Stop(&ctx, req, &resp);
  if (!s.ok()) throw RpcError(s.error_code(), describe(options.address, "Stop", s));
  return resp.outcome();
}

}  // namespace moe::coordinator
