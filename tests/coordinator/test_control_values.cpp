// The coordinator's pure pieces, no sockets: metrics aggregation, plan conversion and validation,
// the listen-address and token rules.
#include <gtest/gtest.h>

#include <vector>

#include "launch/coordinator/metrics_summary.h"
#include "launch/coordinator/proto_convert.h"
#include "launch/coordinator/security.h"

namespace moe::coordinator {
namespace {

parallel::WorkerInfo worker_info(const std::string& host, int mpi_rank) {
  parallel::WorkerInfo w;
  w.host = host;
  w.mpi_rank = mpi_rank;
  w.devices.push_back(parallel::WorkerDevice{"cpu", "test cpu", 1ull << 30});
  w.memory_bandwidth = 20e9;
  return w;
}

// pp = 2, 4 layers per stage, worker i is stage i.
parallel::ClusterPlan two_stage_plan() {
  parallel::ClusterPlan p;
  p.pp = 2;
  for (int i = 0; i < 2; ++i) {
    p.stages.push_back(LayerRange{4 * i, 4 * i + 4});
    parallel::WorkerAssignment a;
    a.worker = i;
    a.pp_rank = i;
    a.world_rank = i;
    a.layers = p.stages.back();
    a.resident_bytes = 1000u * static_cast<uint64_t>(i + 1);
    p.assignments.push_back(a);
  }
  return p;
}

TEST(CoordinatorMetrics, SummaryOfTwoStages) {
  WorkerMetrics w0{"w0-x", "a", 0, 0, {}}, w1{"w1-x", "b", 1, 1, {}};
  StepMetrics s;
  s.tokens = 1;
  s.seconds = 0.5;
  s.compute_seconds = 0.25;
  s.comm_wait_seconds = 0.05;
  s.bubble_seconds = 0.1;
  s.cache_hits = 9;
  s.cache_misses = 1;
  s.prefetch_predicted = 10;
  s.prefetch_used = 8;
  s.prefetch_predicted_and_used = 6;
  s.bytes_nvme = 100;
  for (int i = 0; i < 4; ++i) w0.totals += s;
  s.compute_seconds = 0.4;
  s.tokens = 0;  // rank 1 does not count tokens: rank 0 is the reference anyway
  for (int i = 0; i < 4; ++i) w1.totals += s;
  const WorkerMetrics ws[] = {w1, w0};
  const MetricsSummary m = summarize(ws);
  EXPECT_EQ(m.reference_worker, "w0-x");
  EXPECT_EQ(m.steps, 4u);
  EXPECT_EQ(m.tokens, 4u);
  EXPECT_NEAR(m.tokens_per_s, 2.0, 1e-12);
  ASSERT_EQ(m.stages.size(), 2u);
  EXPECT_EQ(m.stages[0].pp_rank, 0);
  EXPECT_NEAR(m.stages[0].utilisation, 0.5, 1e-12);
  EXPECT_NEAR(m.stages[1].utilisation, 0.8, 1e-12);
  EXPECT_NEAR(m.bubble_fraction, 0.2, 1e-12);
  EXPECT_NEAR(m.comm_wait_fraction, 0.1, 1e-12);
  EXPECT_NEAR(m.cache_hit_rate, 0.9, 1e-12);
  EXPECT_NEAR(m.prefetch_recall, 0.75, 1e-12);
  EXPECT_NEAR(m.prefetch_precision, 0.6, 1e-12);
  EXPECT_EQ(m.bytes_nvme, 800u);
  EXPECT_NE(m.describe().find("tokens/s    2.00"), std::string::npos) << m.describe();
  EXPECT_EQ(summarize({}).describe(), "no metrics reported\n");
}

TEST(CoordinatorProto, PlanRoundTripsAndIsValidated) {
  const std::vector<parallel::WorkerInfo> workers = {worker_info("a", 0), worker_info("b", 1)};
  const parallel::ClusterPlan plan = two_stage_plan();
  v1::ClusterPlan wire;
  to_proto(plan, &wire);
  const parallel::ClusterPlan back = from_proto(wire);
  EXPECT_EQ(back.pp, 2);
  ASSERT_EQ(back.assignments.size(), 2u);
  EXPECT_EQ(back.assignments[1].layers.begin, 4);
  EXPECT_EQ(back.assignments[1].resident_bytes, 2000u);
  EXPECT_NO_THROW(validate_plan(back, 2));
  EXPECT_THROW(validate_plan(back, 3), Error);
  parallel::ClusterPlan gap = plan;
  gap.stages[1].begin = 5;
  EXPECT_THROW(validate_plan(gap, 2), Error);
  parallel::ClusterPlan twice = plan;
  twice.assignments[1].worker = 0;
  EXPECT_THROW(validate_plan(twice, 2), Error);

  v1::WorkerInfo w;
  to_proto(workers[1], &w);
  const parallel::WorkerInfo wb = from_proto(w);
  EXPECT_EQ(wb.host, "b");
  EXPECT_EQ(wb.mpi_rank, 1);
  ASSERT_EQ(wb.devices.size(), 1u);
  EXPECT_EQ(wb.devices[0].memory_bytes, 1ull << 30);
  EXPECT_DOUBLE_EQ(wb.memory_bandwidth, 20e9);
}

TEST(CoordinatorSecurity, LoopbackAddressesAndTokenComparison) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1:7000"));
  EXPECT_TRUE(is_loopback_address("127.3.2.1:0"));
  EXPECT_TRUE(is_loopback_address("localhost:7000"));
  EXPECT_TRUE(is_loopback_address("[::1]:7000"));
  EXPECT_TRUE(is_loopback_address("unix:/tmp/moe.sock"));
  EXPECT_FALSE(is_loopback_address("0.0.0.0:7000"));
  EXPECT_FALSE(is_loopback_address("[::]:7000"));
  EXPECT_FALSE(is_loopback_address("10.0.0.5:7000"));
  EXPECT_FALSE(is_loopback_address("node3:7000"));
  EXPECT_TRUE(constant_time_equal("Bearer abc", "Bearer abc"));
  EXPECT_FALSE(constant_time_equal("Bearer abc", "Bearer abd"));
  EXPECT_FALSE(constant_time_equal("Bearer ab", "Bearer abc"));
}

}  // namespace
}  // namespace moe::coordinator
