// The coordinator's control plane in one process on 127.0.0.1 (port 0): CoordinatorServer and
// WorkerClients over real gRPC channels, and raw stubs for what a well-behaved client never sends.
// Every wait is bounded. The pure pieces are in test_control_values.cpp.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "launch/coordinator/coordinator_service.h"
#include "launch/coordinator/proto_convert.h"
#include "launch/coordinator/worker_client.h"
#include "proto/coordinator.grpc.pb.h"

namespace moe::coordinator {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Lines the server logs, kept for the assertions (outlives the server's threads).
struct LogLines {
  std::mutex mu;
  std::vector<std::string> lines;
  bool any_matches(const std::string& pattern) {
    std::lock_guard lock(mu);
    const std::regex re(pattern);
    for (const auto& l : lines) {
      if (std::regex_search(l, re)) return true;
    }
    return false;
  }
};

// Catches the one on_stop call of a heartbeat thread.
struct StopCatcher {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<StopNotice> notice;
  int calls = 0;
  std::function<void(const StopNotice&)> callback() {
    return [this](const StopNotice& n) {
      {
        std::lock_guard lock(mu);
        notice = n;
        ++calls;
      }
      cv.notify_all();
    };
  }
  std::optional<StopNotice> wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, timeout, [&] { return notice.has_value(); });
    return notice;
  }
};

// pp = number of workers, 4 layers per stage, worker i is stage i.
parallel::ClusterPlan pipeline_plan(std::span<const parallel::WorkerInfo> workers) {
  parallel::ClusterPlan p;
  p.pp = static_cast<int>(workers.size());
  for (size_t i = 0; i < workers.size(); ++i) {
    const auto b = static_cast<int64_t>(4 * i);
    p.stages.push_back(LayerRange{b, b + 4});
    parallel::WorkerAssignment a;
    a.worker = static_cast<int>(i);
    a.pp_rank = static_cast<int>(i);
    a.world_rank = static_cast<int>(i);
    a.layers = p.stages.back();
    a.resident_bytes = 1000 * (i + 1);
    p.assignments.push_back(a);
  }
  p.predicted_tokens_per_s = 12.5;
  return p;
}

Job tiny_job() {
  Job j;
  j.model_dir = "/models/tiny";
  j.prompt_token_ids = {1, 15, 27};
  j.max_new_tokens = 8;
  j.seed = 7;
  return j;
}

ServerOptions options(int workers, std::chrono::milliseconds interval, const std::shared_ptr<LogLines>& log) {
  ServerOptions o;
  o.expected_workers = workers;
  o.heartbeat_interval = interval;
  o.planner = pipeline_plan;
  o.job = tiny_job();
  o.log = [log](const std::string& line) {
    std::lock_guard lock(log->mu);
    log->lines.push_back(line);
  };
  return o;
}

parallel::WorkerInfo worker_info(const std::string& host, int mpi_rank) {
  parallel::WorkerInfo w;
  w.host = host;
  w.mpi_rank = mpi_rank;
  w.devices.push_back(parallel::WorkerDevice{"cpu", "test cpu", 1ull << 30});
  w.ram_bytes = 8ull << 30;
  w.memory_bandwidth = 20e9;
  w.compute_bytes_per_s = 10e9;
  return w;
}

ConnectOptions connect_to(const CoordinatorServer& server, const std::string& token = {}) {
  ConnectOptions c;
  c.address = server.address();
  c.token = token;
  c.connect_timeout = 3s;
  c.rpc_timeout = 3s;
  return c;
}

std::unique_ptr<v1::Coordinator::Stub> raw_stub(const CoordinatorServer& server) {
  return v1::Coordinator::NewStub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
}

void with_deadline(grpc::ClientContext* ctx, const std::string& token = {}) {
  ctx->set_deadline(std::chrono::system_clock::now() + 3s);
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
}

v1::RegisterRequest register_request(const std::string& host, int mpi_rank) {
  v1::RegisterRequest req;
  req.set_protocol_version(kProtocolVersion);
  to_proto(worker_info(host, mpi_rank), req.mutable_worker());
  return req;
}

grpc::Status raw_register(v1::Coordinator::Stub& stub, const v1::RegisterRequest& req, const std::string& token = {}) {
  grpc::ClientContext ctx;
  with_deadline(&ctx, token);
  v1::RegisterResponse resp;
  return stub.Register(&ctx, req, &resp);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// ---- A whole job -----------------------------------------------------------------------------------

TEST(Coordinator, TwoWorkersRunAJobToTheEnd) {
  auto log = std::make_shared<LogLines>();
  CoordinatorServer server(options(2, 200ms, log));
  server.start();
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(server.address(), "127.0.0.1:" + std::to_string(server.port()));

  StopCatcher stops[2];
  std::unique_ptr<WorkerClient> clients[2];
  auto run_worker = [&](int i) -> WorkerPlan {
    clients[i] = WorkerClient::connect(connect_to(server));
    const Registration r = clients[i]->register_worker(worker_info("host" + std::to_string(i), 1 - i));
    EXPECT_EQ(r.heartbeat_interval, 200ms);
    EXPECT_EQ(r.expected_workers, 2);
    clients[i]->start_heartbeats(stops[i].callback());
    WorkerPlan p = clients[i]->get_plan(5s);
    clients[i]->report_ready();
    StepMetrics s;
    s.tokens = 1;
    s.seconds = 0.1;
    s.compute_seconds = 0.06 + 0.02 * i;
    s.bubble_seconds = 0.01;
    s.cache_hits = 3;
    s.cache_misses = 1;
    s.prefetch_predicted = 4;
    s.prefetch_used = 4;
    s.prefetch_predicted_and_used = 2;
    s.bytes_ram = 1 << 20;
    const StepMetrics steps[] = {s, s};
    clients[i]->report_metrics(steps);
    return p;
  };
  // Started in reverse mpi-rank order: the planner still sees mpi rank 0 first.
  auto f0 = std::async(std::launch::async, run_worker, 0);  // mpi rank 1
  auto f1 = std::async(std::launch::async, run_worker, 1);  // mpi rank 0
  ASSERT_EQ(f0.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(f1.wait_for(10s), std::future_status::ready);
  const WorkerPlan p0 = f0.get(), p1 = f1.get();

  EXPECT_EQ(p1.assignment.world_rank, 0);
  EXPECT_EQ(p0.assignment.world_rank, 1);
  EXPECT_EQ(p0.assignment.layers.begin, 4);
  EXPECT_EQ(p0.assignment.layers.end, 8);
  EXPECT_EQ(p0.plan.pp, 2);
  ASSERT_EQ(p0.workers.size(), 2u);
  EXPECT_EQ(p0.workers[0].host, "host1");
  EXPECT_EQ(p0.workers[0].id, clients[1]->worker_id());
  EXPECT_EQ(p0.workers[1].id, clients[0]->worker_id());
  EXPECT_EQ(p0.job.model_dir, "/models/tiny");
  EXPECT_EQ(p0.job.prompt_token_ids, (std::vector<int32_t>{1, 15, 27}));
  EXPECT_EQ(p0.job.seed, 7u);
  EXPECT_DOUBLE_EQ(p1.plan.predicted_tokens_per_s, 12.5);

  // A third worker is one too many.
  auto extra = WorkerClient::connect(connect_to(server));
  try {
    extra->register_worker(worker_info("host2", 2));
    ADD_FAILURE() << "a third registration was accepted";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), grpc::StatusCode::FAILED_PRECONDITION) << e.what();
  }

  // Only world rank 0 reports the result.
  JobResult result;
  result.token_ids = {5, 6, 7, 8};
  result.text = "five six seven eight";
  result.prompt_tokens = 3;
  result.decode_seconds = 0.4;
  result.stop_reason = "max_new_tokens";
  try {
    clients[0]->report_result(result);
    ADD_FAILURE() << "world rank 1 reported the result";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(std::string(e.what()).find("only world rank 0"), std::string::npos) << e.what();
  }
  clients[1]->report_result(result);

  const auto outcome = server.wait_for_outcome(5s);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->kind, Outcome::Kind::finished) << outcome->reason;
  ASSERT_TRUE(outcome->result.has_value());
  EXPECT_EQ(outcome->result->token_ids, result.token_ids);
  EXPECT_EQ(outcome->result->text, result.text);
  EXPECT_EQ(outcome->result->stop_reason, "max_new_tokens");
  ASSERT_TRUE(outcome->worker.has_value());
  EXPECT_EQ(outcome->worker->id, clients[1]->worker_id());

  // Metrics: 2 steps of 0.1 s and 1 token each per worker.
  const MetricsSummary& m = outcome->metrics;
  EXPECT_EQ(m.reference_worker, clients[1]->worker_id());
  EXPECT_EQ(m.tokens, 2u);
  EXPECT_NEAR(m.tokens_per_s, 10.0, 1e-9);
  ASSERT_EQ(m.stages.size(), 2u);
  EXPECT_NEAR(m.stages[0].utilisation, 0.8, 1e-9);  // world rank 0 is client 1
  EXPECT_NEAR(m.stages[1].utilisation, 0.6, 1e-9);
  EXPECT_NEAR(m.bubble_fraction, 0.1, 1e-9);
  EXPECT_NEAR(m.cache_hit_rate, 0.75, 1e-9);
  EXPECT_NEAR(m.prefetch_recall, 0.5, 1e-9);
  EXPECT_NEAR(m.prefetch_precision, 0.5, 1e-9);
  EXPECT_EQ(m.bytes_ram, 4u << 20);

  // Both workers hear STOP (finished) on their next heartbeat.
  for (auto& s : stops) {
    const auto n = s.wait(3s);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(n->cause, StopNotice::Cause::finished) << n->reason;
    EXPECT_NE(n->reason.find("job finished"), std::string::npos) << n->reason;
  }
  server.stop();
  EXPECT_TRUE(log->any_matches("plan ready: tp 1, pp 2, ep 1 over 2 workers"));
  for (auto& s : stops) {
    std::lock_guard lock(s.mu);
    EXPECT_EQ(s.calls, 1);
  }
}

TEST(Coordinator, GetPlanTimesOutWhileWorkersAreMissing) {
  auto log = std::make_shared<LogLines>();
  CoordinatorServer server(options(2, 200ms, log));
  server.start();
  auto c = WorkerClient::connect(connect_to(server));
  c->register_worker(worker_info("a", 0));
  const auto t0 = Clock::now();
  try {
    c->get_plan(600ms);  // waiting on the coordinator counts as a sign of life
    ADD_FAILURE() << "a plan with one of two workers";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_NE(std::string(e.what()).find("1 of 2 workers registered"), std::string::npos) << e.what();
  }
  const double waited = ms_between(t0, Clock::now());
  EXPECT_GE(waited, 500);
  EXPECT_LT(waited, 3000);
  EXPECT_FALSE(server.wait_for_outcome(0ms).has_value());  // not declared lost while polling
}

// ---- Refusals ----------------------------------------------------------------------------------------

TEST(Coordinator, WrongTokenOrNoTokenIsUnauthenticated) {
  auto log = std::make_shared<LogLines>();
  ServerOptions o = options(1, 200ms, log);
  o.token = "s3cret";
  CoordinatorServer server(o);
  server.start();

  for (const std::string token : {"wrong", ""}) {
    auto c = WorkerClient::connect(connect_to(server, token));
    try {
      c->register_worker(worker_info("a", 0));
      ADD_FAILURE() << "registered with token '" << token << "'";
    } catch (const RpcError& e) {
      EXPECT_EQ(e.code(), grpc::StatusCode::UNAUTHENTICATED) << e.what();
    }
  }
  // A raw call with a near miss (a prefix of the token) is refused the same way.
  auto stub = raw_stub(server);
  EXPECT_EQ(raw_register(*stub, register_request("a", 0), "s3cre").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // The admin call too.
  try {
    request_stop(connect_to(server, "wrong"), "no");
    ADD_FAILURE() << "Stop accepted a wrong token";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(server.registered_workers(), 0);
  EXPECT_FALSE(server.wait_for_outcome(0ms).has_value());
  EXPECT_TRUE(log->any_matches(R"(^coordinator: refused Register from ipv4:127\.0\.0\.1:[0-9]+: wrong token$)"));
  EXPECT_TRUE(log->any_matches(R"(^coordinator: refused Register from ipv4:127\.0\.0\.1:[0-9]+: no token$)"));
  EXPECT_TRUE(log->any_matches(R"(^coordinator: refused Stop from ipv4:127\.0\.0\.1:[0-9]+: wrong token$)"));

  auto good = WorkerClient::connect(connect_to(server, "s3cret"));
  EXPECT_FALSE(good->register_worker(worker_info("a", 0)).worker_id.empty());
  EXPECT_EQ(server.registered_workers(), 1);
}

TEST(Coordinator, ProtocolVersionMismatchIsFailedPrecondition) {
  auto log = std::make_shared<LogLines>();
  CoordinatorServer server(options(1, 200ms, log));
  server.start();
  auto stub = raw_stub(server);
  for (uint32_t version : {2u, 0u}) {
    v1::RegisterRequest req = register_request("a", 0);
    req.set_protocol_version(version);
    const grpc::Status s = raw_register(*stub, req);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(s.error_message().find("protocol version " + std::to_string(version)), std::string::npos)
        << s.error_message();
    EXPECT_NE(s.error_message().find("speaks protocol version 1"), std::string::npos) << s.error_message();
  }
  grpc::ClientContext ctx;
  with_deadline(&ctx);
  v1::HeartbeatRequest hb;
  hb.set_protocol_version(2);
  hb.set_worker_id("w0-whatever");
  v1::HeartbeatResponse hb_resp;
  EXPECT_EQ(stub->Heartbeat(&ctx, hb, &hb_resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(server.registered_workers(), 0);
}

TEST(Coordinator, MalformedFieldsAreInvalidArgument) {
  auto log = std::make_shared<LogLines>();
  CoordinatorServer server(options(2, 200ms, log));
  server.start();
  auto stub = raw_stub(server);
  auto expect_invalid = [&](v1::RegisterRequest req, const std::string& needle) {
    const grpc::Status s = raw_register(*stub, req);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << needle << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(needle), std::string::npos) << s.error_message();
  };
  v1::RegisterRequest r = register_request("", 0);
  expect_invalid(r, "worker.host is empty");
  r = register_request("a", -5);
  expect_invalid(r, "worker.mpi_rank is -5");
  r = register_request("a", 0);
  r.mutable_worker()->set_memory_bandwidth(-1);
  expect_invalid(r, "worker.memory_bandwidth is -1");
  r = register_request("a", 0);
  r.mutable_worker()->set_link_latency(std::nan(""));
  expect_invalid(r, "worker.link_latency");
  r = register_request("a", 0);
  r.mutable_worker()->mutable_devices(0)->clear_kind();
  expect_invalid(r, "worker.devices[0].kind is empty");
  r = register_request("a", 0);
  r.mutable_worker()->set_id("w7-mine");
  expect_invalid(r, "the coordinator chooses ids");
  r = register_request("a", 0);
  r.clear_worker();
  expect_invalid(r, "worker is missing");
  EXPECT_EQ(server.registered_workers(), 0);

  // A plan request before registration: no id, or one this coordinator never gave.
  for (const std::string id : {"", "w0-notmine"}) {
    grpc::ClientContext ctx;
    with_deadline(&ctx);
    v1::GetPlanRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_worker_id(id);
    req.set_wait_ms(10);
    v1::GetPlanResponse resp;
    const grpc::Status s = stub->GetPlan(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), id.empty() ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::NOT_FOUND)
        << s.error_message();
    EXPECT_NE(s.error_message().find("Register first"), std::string::npos) << s.error_message();
  }

  // Negative times in metrics; a duplicate mpi rank.
  auto c = WorkerClient::connect(connect_to(server));
  c->register_worker(worker_info("a", 0));
  StepMetrics bad;
  bad.seconds = -0.5;
  const StepMetrics steps[] = {StepMetrics{}, bad};
  try {
    c->report_metrics(steps);
    ADD_FAILURE() << "negative seconds accepted";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("steps[1]: step.seconds is -0.5"), std::string::npos) << e.what();
  }
  EXPECT_EQ(raw_register(*stub, register_request("b", 0)).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(server.registered_workers(), 1);
}

TEST(Coordinator, GarbageBytesAreRefusedAndServingGoesOn) {
  auto log = std::make_shared<LogLines>();
  CoordinatorServer server(options(1, 200ms, log));
  server.start();
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  const std::string garbage[] = {
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),  // a varint that never ends
      std::string("\x12\x7f"
                  "abc",
                  5),                  // a field longer than the message
      std::string("\x0f\x01\x02", 3),  // wire type 7 does not exist
  };
  for (const auto& bytes : garbage) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    std::promise<grpc::Status> done;
    generic.UnaryCall(&ctx, "/moe.coordinator.v1.Coordinator/Register", grpc::StubOptions(), &request, &response,
                      [&](grpc::Status s) { done.set_value(std::move(s)); });
    auto f = done.get_future();
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_FALSE(f.get().ok());
  }
  EXPECT_EQ(server.registered_workers(), 0);
  auto c = WorkerClient::connect(connect_to(server));
  EXPECT_FALSE(c->register_worker(worker_info("a", 0)).worker_id.empty());
}

// ---- How a job ends early ------------------------------------------------------------------------------

TEST(Coordinator, SilentWorkerIsDeclaredLostAndTheOthersAreStopped) {
  constexpr auto interval = 200ms;
  auto log = std::make_shared<LogLines>();
  CoordinatorServer server(options(2, interval, log));
  server.start();
  auto a = WorkerClient::connect(connect_to(server));
  auto b = WorkerClient::connect(connect_to(server));
  a->register_worker(worker_info("host-a", 0));
  b->register_worker(worker_info("host-b", 1));
  StopCatcher stop_a, stop_b;
  a->start_heartbeats(stop_a.callback());
  b->start_heartbeats(stop_b.callback());
  ASSERT_EQ(a->get_plan(5s).assignment.world_rank, 0);
  ASSERT_EQ(b->get_plan(5s).assignment.world_rank, 1);
  std::this_thread::sleep_for(2 * interval);
  ASSERT_FALSE(server.wait_for_outcome(0ms).has_value());

  b->stop_heartbeats();  // b goes silent
  const auto last = b->last_heartbeat();
  ASSERT_TRUE(last.has_value());
  const auto outcome = server.wait_for_outcome(3s);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->kind, Outcome::Kind::worker_lost) << outcome->reason;
  ASSERT_TRUE(outcome->worker.has_value());
  EXPECT_EQ(outcome->worker->id, b->worker_id());
  EXPECT_EQ(outcome->worker->host, "host-b");
  EXPECT_EQ(outcome->worker->world_rank, 1);
  // Declared after 2 intervals of silence, before 2.5 (a behaviour bound with slack, not a benchmark).
  const double detected_ms = ms_between(*last, outcome->decided_at);
  EXPECT_GT(outcome->silent_seconds, 0.4);
  EXPECT_GT(detected_ms, 1.9 * 200);
  EXPECT_LT(detected_ms, 2.5 * 200);
  EXPECT_TRUE(std::regex_search(
      outcome->reason, std::regex(b->worker_id() + R"( \(host host-b, mpi rank 1, world rank 1\) lost: )"
                                                   R"(no heartbeat for 0\.[0-9]+ s \(2 intervals of 0\.2 s\))")))
      << outcome->reason;

  const auto n = stop_a.wait(2s);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->cause, StopNotice::Cause::stopped);
  EXPECT_NE(n->reason.find(b->worker_id()), std::string::npos) << n->reason;
  EXPECT_FALSE(stop_b.wait(0ms).has_value());  // stop_heartbeats does not call on_stop
  server.stop();
}

TEST(Coordinator, InfeasiblePlanFailsGetPlanWithThePlannersMessage) {
  auto log = std::make_shared<LogLines>();
  ServerOptions o = options(2, 200ms, log);
  o.planner = [](std::span<const parallel::WorkerInfo>) -> parallel::ClusterPlan {
    throw parallel::InfeasiblePlan("the model needs 48.0 GiB and the workers have 32.0 GiB");
  };
  CoordinatorServer server(o);
  server.start();
  std::unique_ptr<WorkerClient> clients[2];
  for (int i = 0; i < 2; ++i) {
    clients[i] = WorkerClient::connect(connect_to(server));
    clients[i]->register_worker(worker_info("h" + std::to_string(i), i));
  }
  for (auto& c : clients) {
    try {
      c->get_plan(5s);
      ADD_FAILURE() << "a plan came back";
    } catch (const RpcError& e) {
      EXPECT_EQ(e.code(), grpc::StatusCode::FAILED_PRECONDITION);
      EXPECT_NE(std::string(e.what()).find("the model needs 48.0 GiB and the workers have 32.0 GiB"), std::string::npos)
          << e.what();
    }
  }
  const auto outcome = server.wait_for_outcome(3s);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->kind, Outcome::Kind::plan_failed);
  EXPECT_NE(outcome->reason.find("no plan for 2 workers: the model needs 48.0 GiB"), std::string::npos)
      << outcome->reason;
}

TEST(Coordinator, InvalidPlanFromThePlannerIsAPlanFailure) {
  auto log = std::make_shared<LogLines>();
  ServerOptions o = options(1, 200ms, log);
  o.planner = [](std::span<const parallel::WorkerInfo> w) {
    parallel::ClusterPlan p = pipeline_plan(w);
    p.tp = 2;  // two ranks for one worker
    return p;
  };
  CoordinatorServer server(o);
  server.start();
  auto c = WorkerClient::connect(connect_to(server));
  c->register_worker(worker_info("h", 0));
  EXPECT_THROW(c->get_plan(3s), RpcError);
  const auto outcome = server.wait_for_outcome(3s);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->kind, Outcome::Kind::plan_failed);
  EXPECT_NE(outcome->reason.find("2 ranks for 1 workers"), std::string::npos) << outcome->reason;
}

TEST(Coordinator, AdminStopReachesTheWorkers) {
  auto log = std::make_shared<LogLines>();
  ServerOptions o = options(1, 200ms, log);
  o.token = "t";
  CoordinatorServer server(o);
  server.start();
  auto c = WorkerClient::connect(connect_to(server, "t"));
  c->register_worker(worker_info("h", 0));
  StopCatcher stop;
  c->start_heartbeats(stop.callback());
  c->get_plan(3s);
  const std::string line = request_stop(connect_to(server, "t"), "maintenance window");
  EXPECT_NE(line.find("maintenance window"), std::string::npos) << line;
  const auto outcome = server.wait_for_outcome(3s);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->kind, Outcome::Kind::stopped);
  const auto n = stop.wait(2s);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->cause, StopNotice::Cause::stopped);
  EXPECT_NE(n->reason.find("maintenance window"), std::string::npos) << n->reason;
  // A second stop says the job was already over.
  EXPECT_NE(request_stop(connect_to(server, "t"), "again").find("maintenance window"), std::string::npos);
}

TEST(Coordinator, WorkerNoticesAnUnreachableCoordinator) {
  auto log = std::make_shared<LogLines>();
  auto server = std::make_unique<CoordinatorServer>(options(1, 200ms, log));
  server->start();
  const std::string address = server->address();
  auto c = WorkerClient::connect(connect_to(*server));
  c->register_worker(worker_info("h", 0));
  server->stop(0ms);
  server.reset();
  StopCatcher stop;
  const auto t0 = Clock::now();
  c->start_heartbeats(stop.callback());
  const auto n = stop.wait(3s);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->cause, StopNotice::Cause::coordinator_unreachable);
  EXPECT_TRUE(std::regex_search(n->reason, std::regex("^coordinator at " + address + R"( unreachable for 0\.[4-9] s)")))
      << n->reason;
  EXPECT_LT(ms_between(t0, Clock::now()), 2000);
}

// ---- Where it may listen -------------------------------------------------------------------------------

TEST(Coordinator, NonLoopbackAddressNeedsATokenOrTls) {
  auto log = std::make_shared<LogLines>();
  ServerOptions o = options(1, 200ms, log);
  o.listen_address = "0.0.0.0:0";
  try {
    CoordinatorServer server(o);
    ADD_FAILURE() << "0.0.0.0 without a token was accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("0.0.0.0:0"), std::string::npos) << what;
    EXPECT_NE(what.find("--token"), std::string::npos) << what;
    EXPECT_NE(what.find("--tls-cert"), std::string::npos) << what;
  }
  o.token = "secret";
  CoordinatorServer server(o);
  server.start();
  EXPECT_GT(server.port(), 0);
}

TEST(Coordinator, OptionsAreChecked) {
  auto log = std::make_shared<LogLines>();
  ServerOptions o = options(0, 200ms, log);
  EXPECT_THROW(CoordinatorServer{o}, Error);
  o = options(1, 200ms, log);
  o.planner = nullptr;
  EXPECT_THROW(CoordinatorServer{o}, Error);
  o = options(1, 200ms, log);
  o.tls_cert_path = "/nonexistent/cert.pem";
  EXPECT_THROW(CoordinatorServer{o}, Error);  // a certificate without its key
  o = options(1, 200ms, log);
  o.job.max_new_tokens = 0;
  EXPECT_THROW(CoordinatorServer{o}, Error);
}

TEST(Coordinator, TlsWithTokenOnLoopback) {
  const auto dir = std::filesystem::temp_directory_path() / ("moe-coordinator-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext "
      "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl could not make a test certificate";
  auto log = std::make_shared<LogLines>();
  ServerOptions o = options(1, 200ms, log);
  o.token = "t";
  o.tls_cert_path = cert;
  o.tls_key_path = key;
  CoordinatorServer server(o);
  server.start();

  ConnectOptions c = connect_to(server, "t");
  c.tls_root_cert_path = cert;
  c.tls_target_name = "localhost";
  auto client = WorkerClient::connect(c);
  EXPECT_FALSE(client->register_worker(worker_info("h", 0)).worker_id.empty());

  ConnectOptions plain = connect_to(server, "t");  // plaintext to a TLS port never connects
  plain.connect_timeout = 500ms;
  EXPECT_THROW(WorkerClient::connect(plain), RpcError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moe::coordinator
