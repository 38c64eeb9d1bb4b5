// The coordinator's control-plane messages (proto/coordinator.proto): byte 0 picks a message,
// the rest is its wire encoding. What the coordinator does with a request before it touches its
// state (launch/coordinator/coordinator_service.cpp: from_proto and the checks around it, the
// planner over the registered workers) and what a worker does with a GetPlanResponse
// (launch/coordinator/worker_client.cpp) run on it. A message that does not parse is dropped by
// gRPC before any handler, so it is skipped here.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include "fuzz/fuzz_common.h"
#include "launch/coordinator/control_types.h"
#include "launch/coordinator/metrics_summary.h"
#include "launch/coordinator/proto_convert.h"
#include "parallel/cluster_plan.h"
#include "parallel/cluster_planner.h"
#include "proto/coordinator.pb.h"
#include "runtime/core/error.h"
#include "runtime/model/config.h"

namespace {

namespace co = moe::coordinator;
namespace v1 = moe::coordinator::v1;

const moe::ModelConfig& config() {
  static const moe::ModelConfig c =
      moe::load_model_config(std::filesystem::path(MOE_FUZZ_FIXTURES) / "golden" / "mixtral_sharded_bf16");
  return c;
}

// What the planner makes of these workers (cmd_coordinator.cpp's planner, --auto).
void plan(const std::vector<moe::parallel::WorkerInfo>& workers, int pp) {
  try {
    const moe::parallel::ModelBytes bytes = moe::parallel::model_bytes(config(), 2.0);
    moe::parallel::PlanRequest r;
    r.pp = pp;
    const moe::parallel::ClusterPlan p = moe::parallel::plan_cluster(bytes, config(), workers, r);
    co::validate_plan(p, workers.size());
    (void)p.describe(workers);
  } catch (const moe::Error&) {
  }
}

template <class M>
bool parse(M& m, const uint8_t* data, size_t size) {
  return m.ParseFromArray(data, static_cast<int>(size));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // "invalid UTF-8" lines on every other input
  (void)config();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0];
  ++data;
  --size;
  try {
    switch (which % 6) {
      case 0: {  // Register
        v1::RegisterRequest req;
        if (!parse(req, data, size) || !req.has_worker()) return 0;
        moe::parallel::WorkerInfo info = co::from_proto(req.worker());
        if (!info.id.empty()) return 0;  // refused: the coordinator chooses ids
        info.id = "w0-fuzz";
        std::vector<moe::parallel::WorkerInfo> workers{info};
        plan(workers, 1);
        moe::parallel::WorkerInfo second = info;
        second.id = "w1-fuzz";
        second.mpi_rank = second.mpi_rank >= 0 && second.mpi_rank < INT32_MAX ? second.mpi_rank + 1 : -1;
        workers.push_back(second);
        plan(workers, 2);
        plan(workers, 0);
        break;
      }
      case 1: {  // Heartbeat
        v1::HeartbeatRequest req;
        if (!parse(req, data, size)) return 0;
        (void)co::from_proto(req.progress());
        break;
      }
      case 2: {  // ReportMetrics
        v1::ReportMetricsRequest req;
        if (!parse(req, data, size)) return 0;
        co::StepTotals add;
        for (int i = 0; i < req.steps_size(); ++i) add += co::from_proto(req.steps(i));
        co::StepTotals total;
        total += add;
        total += add;
        break;
      }
      case 3: {  // ReportResult
        v1::ReportResultRequest req;
        if (!parse(req, data, size)) return 0;
        (void)co::from_proto(req);
        break;
      }
      case 4: {  // a worker's GetPlan answer
        v1::GetPlanResponse resp;
        if (!parse(resp, data, size) || !resp.ready()) return 0;
        (void)co::from_proto(resp.assignment());
        const moe::parallel::ClusterPlan p = co::from_proto(resp.plan());
        std::vector<moe::parallel::WorkerInfo> workers;
        for (const auto& w : resp.workers()) workers.push_back(co::from_proto(w));
        (void)co::from_proto(resp.job());
        co::validate_plan(p, workers.size());
        (void)p.describe(workers);
        break;
      }
      default: {  // the job as the coordinator sends it, back and forth
        v1::Job job;
        if (!parse(job, data, size)) return 0;
        const co::Job j = co::from_proto(job);
        v1::Job again;
        co::to_proto(j, &again);
        (void)co::from_proto(again);
        break;
      }
    }
  } catch (const moe::Error&) {
  }
  return 0;
}
