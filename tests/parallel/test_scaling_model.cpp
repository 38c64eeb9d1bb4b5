// The scaling cost model: its formulas against hand-computed values, and its calibration
// recovering known parameters from points the model itself generated.
#include <gtest/gtest.h>

#include "parallel/scaling_model.h"
#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

DecodeBytes model() {
  DecodeBytes m;
  m.layers = 8;
  m.hidden = 1024;
  m.attention = 12e6;
  m.experts = 99e6;
  m.lm_head = 18e6;
  m.replicated = 0.2e6;
  m.total = m.attention + m.experts + m.lm_head + m.replicated;
  return m;
}

TEST(ScalingModel, AllReduce) {
  const Link l{"x", 5e-6, 50e9};
  EXPECT_DOUBLE_EQ(allreduce_seconds(l, 1, 4096), 0.0);
  EXPECT_DOUBLE_EQ(allreduce_seconds(l, 2, 4096), 2 * 5e-6 + 2 * 4096 / (2 * 50e9));
  EXPECT_DOUBLE_EQ(allreduce_seconds(l, 8, 8e6), 6 * 5e-6 + 14 * 1e6 / 50e9);
  EXPECT_DOUBLE_EQ(allreduce_seconds(l, 5, 5e6), 6 * 5e-6 + 8 * 1e6 / 50e9);
}

TEST(ScalingModel, ShapesOfTheProjections) {
  const DecodeBytes m = model();
  const Device gpu{"gpu", 2.5e12, 2.5e12};
  EXPECT_DOUBLE_EQ(tokens_per_second(m, gpu, Link{"n", 3e-6, 450e9}, Mode::kSingle, 1, 1), 2.5e12 / m.total);
  double last = 1e9;
  for (const int n : {2, 4, 8, 16}) {  // TP efficiency falls with ranks, and more on a slow link
    const double fast = tokens_per_second(m, gpu, Link{"n", 3e-6, 450e9}, Mode::kTensor, n, 1) / n;
    const double slow = tokens_per_second(m, gpu, Link{"e", 30e-6, 1.25e9}, Mode::kTensor, n, 1) / n;
    EXPECT_LT(fast, last);
    EXPECT_LT(slow, fast);
    last = fast;
  }
  // PP: no gain with one sequence, close to N x with N in flight.
  const Link nv{"n", 3e-6, 450e9};
  const double one = tokens_per_second(m, gpu, nv, Mode::kSingle, 1, 1);
  EXPECT_LT(tokens_per_second(m, gpu, nv, Mode::kPipeline, 4, 1), one);
  EXPECT_DOUBLE_EQ(tokens_per_second(m, gpu, nv, Mode::kPipeline, 4, 4),
                   1.0 / (m.total / 4 / 2.5e12 + 3e-6 + 4096.0 / 450e9));
  EXPECT_GT(tokens_per_second(m, gpu, nv, Mode::kPipeline, 4, 4), 3 * one);
}

TEST(ScalingModel, CalibrationRecoversTheParameters) {
  const DecodeBytes m = model();
  const Device d{"cpu", 28e9, 16e9};
  const Link l{"shm", 20e-6, 28e9};
  std::vector<Measured> runs;
  const auto add = [&](Mode mode, int ranks, int in_flight, double calls) {
    Measured r{mode, ranks, in_flight, tokens_per_second(m, d, l, mode, ranks, in_flight), 0, calls};
    r.comm_seconds_per_token = calls * allreduce_seconds(l, ranks, 4.0 * m.hidden);
    runs.push_back(r);
  };
  add(Mode::kSingle, 1, 1, 0);
  add(Mode::kPipeline, 2, 2, 0);
  add(Mode::kTensor, 2, 1, 2 * 8 + 1);
  const Calibration c = calibrate(m, runs);
  EXPECT_NEAR(c.device.rank_rate, d.rank_rate, 1e-9 * d.rank_rate);
  // alpha absorbs the (tiny) bandwidth term of a 4 KB all-reduce.
  EXPECT_NEAR(c.link.alpha, l.alpha + 4096.0 / (2 * l.beta), 1e-12);
  EXPECT_NEAR(c.device.shared_rate, d.shared_rate, 0.01 * d.shared_rate);
  EXPECT_THROW(calibrate(m, {runs[0]}), Error);
}

}  // namespace
}  // namespace moe::parallel
