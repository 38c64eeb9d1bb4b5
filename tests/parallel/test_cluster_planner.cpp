// The coordinator's cluster planner: model bytes against a hand count, parallel degrees chosen
// and checked, stages grouped by speed, layer ranges against a brute-force search over every
// split (with and without RAM limits), expert offload budgets, and refusals that say the numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <tuple>

#include "parallel/cluster_planner.h"
#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr double kInf = std::numeric_limits<double>::infinity();

ModelConfig config(int64_t layers, bool moe = true) {
  ModelConfig c;
  c.vocab_size = 1000;
  c.hidden_size = 64;
  c.num_layers = layers;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  c.head_dim = 8;
  if (moe) {
    c.num_experts = 8;
    c.experts_per_token = 2;
    c.expert_intermediate = 32;
  } else {
    c.dense_intermediate = 128;
  }
  c.layer_is_moe.assign(static_cast<size_t>(layers), moe);
  c.layer_window.assign(static_cast<size_t>(layers), 0);
  return c;
}

// Synthetic bytes: each layer `dense[i]` plus 8 experts of `expert` bytes, top-2.
ModelBytes bytes(const std::vector<uint64_t>& dense, uint64_t expert, uint64_t first = 0, uint64_t last = 0) {
  ModelBytes m;
  m.expert_bytes = expert;
  m.top_k = 2;
  for (const uint64_t d : dense) {
    m.layer_dense.push_back(d);
    m.layer_experts.push_back(8 * expert);
    m.layer_token.push_back(d + 2 * expert);
  }
  m.first_extra = first;
  m.last_extra = m.last_token = last;
  return m;
}

WorkerInfo worker(const std::string& id, double speed, uint64_t ram, double drive = 0) {
  WorkerInfo w;
  w.id = id;
  w.host = "host-" + id;
  w.compute_bytes_per_s = speed;
  w.ram_bytes = ram;
  w.drive_bandwidth = drive;
  return w;
}

// Reference model, tp = ep = 1, no offload: seconds per token of worker w running r, kInf when
// its layers, embedding and head do not fit in its RAM less `reserve`.
double ref_seconds(const ModelBytes& m, int64_t vocab, const WorkerInfo& w, LayerRange r, uint64_t reserve) {
  const auto n = static_cast<int64_t>(m.layer_dense.size());
  double held = 0, read = 0;
  for (int64_t i = r.begin; i < r.end; ++i) {
    held += static_cast<double>(m.layer_dense[size_t(i)] + m.layer_experts[size_t(i)]);
    read += static_cast<double>(m.layer_token[size_t(i)]);
  }
  if (r.begin == 0) held += static_cast<double>(m.first_extra), read += static_cast<double>(m.first_extra) / vocab;
  if (r.end == n) held += static_cast<double>(m.last_extra), read += static_cast<double>(m.last_token);
  if (held > static_cast<double>(w.ram_bytes) - static_cast<double>(reserve)) return kInf;
  return read / w.compute_bytes_per_s;
}

struct BruteForce {
  double best = kInf;                           // the smallest largest stage time
  std::vector<std::vector<LayerRange>> optima;  // every split reaching it
};

// Every split of the layers into stage_workers.size() contiguous non-empty ranges, stage s on
// workers[stage_workers[s]].
BruteForce brute_force(const ModelBytes& m, int64_t vocab, const std::vector<WorkerInfo>& workers,
                       const std::vector<int>& stage_workers, uint64_t reserve) {
  const auto n = static_cast<int64_t>(m.layer_dense.size());
  const auto s = static_cast<int>(stage_workers.size());
  BruteForce out;
  std::vector<LayerRange> rs;
  std::function<void(int64_t)> rec = [&](int64_t from) {
    const auto k = static_cast<int>(rs.size());
    if (k == s) {
      if (from != n) return;
      double worst = 0;
      for (int t = 0; t < s; ++t)
        worst =
            std::max(worst, ref_seconds(m, vocab, workers[size_t(stage_workers[size_t(t)])], rs[size_t(t)], reserve));
      if (worst == kInf) return;
      if (worst < out.best * (1 - 1e-12)) out = BruteForce{worst, {}};
      if (worst <= out.best * (1 + 1e-12)) out.optima.push_back(rs);
      return;
    }
    for (int64_t e = from + 1; e <= n - (s - k - 1); ++e) {
      rs.push_back({from, e});
      rec(e);
      rs.pop_back();
    }
  };
  rec(0);
  return out;
}

std::vector<std::pair<int64_t, int64_t>> pairs(const std::vector<LayerRange>& rs) {
  std::vector<std::pair<int64_t, int64_t>> p;
  for (const LayerRange& r : rs) p.emplace_back(r.begin, r.end);
  return p;
}

// The plan's largest stage time under the reference model (stage s on the worker at pp_rank s).
double plan_worst(const ClusterPlan& p, const ModelBytes& m, int64_t vocab, const std::vector<WorkerInfo>& w) {
  double worst = 0;
  for (const WorkerAssignment& a : p.assignments)
    worst = std::max(worst, ref_seconds(m, vocab, w[size_t(a.worker)], a.layers, 0));
  return worst;
}

std::string gib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f GiB", static_cast<double>(b) / static_cast<double>(kGiB));
  return s;
}

// The message of what f throws; "" when it does not throw. `infeasible`: whether it was an InfeasiblePlan.
std::string error_of(const std::function<void()>& f, bool* infeasible = nullptr) {
  try {
    f();
  } catch (const InfeasiblePlan& e) {
    if (infeasible) *infeasible = true;
    return e.what();
  } catch (const Error& e) {
    if (infeasible) *infeasible = false;
    return e.what();
  }
  return "";
}

TEST(ClusterPlanModelBytes, CountsMatchTheConfigByHand) {
  ModelConfig c = config(3);
  c.layer_is_moe = {false, true, true};
  c.dense_intermediate = 128;
  c.shared_intermediate = 16;
  const int64_t h = 64, attn = h * 64 * 2 + h * 32 * 2 + 2 * h;  // q/o 64 wide, k/v 32 wide, 2 norms
  const int64_t expert = 3 * h * 32, router = 8 * h, shared = 3 * h * 16 + h;
  for (const double bpp : {2.0, 0.5625}) {
    const ModelBytes m = model_bytes(c, bpp);
    auto b = [&](int64_t params) { return static_cast<uint64_t>(std::llround(static_cast<double>(params) * bpp)); };
    ASSERT_EQ(m.layer_dense.size(), 3u);
    EXPECT_EQ(m.layer_dense[0], b(attn + 3 * h * 128));
    EXPECT_EQ(m.layer_experts[0], 0u);
    EXPECT_EQ(m.layer_token[0], b(attn + 3 * h * 128));
    for (size_t i = 1; i < 3; ++i) {
      EXPECT_EQ(m.layer_dense[i], b(attn + router + shared));
      EXPECT_EQ(m.layer_experts[i], b(8 * expert));
      EXPECT_EQ(m.layer_token[i], b(attn + router + shared + 2 * expert));
    }
    EXPECT_EQ(m.expert_bytes, b(expert));
    EXPECT_EQ(m.top_k, 2);
    EXPECT_EQ(m.first_extra, b(1000 * h));
    EXPECT_EQ(m.last_extra, b(h + 1000 * h));
    EXPECT_EQ(m.last_token, b(h + 1000 * h));
  }
  c.tie_word_embeddings = true;  // the last stage still binds the head (its own embedding copy)
  EXPECT_EQ(model_bytes(c, 2).last_extra, static_cast<uint64_t>(2 * (h + 1000 * h)));
  EXPECT_THROW(model_bytes(c, 0), Error);
}

TEST(ClusterPlanBalance, EqualWorkersMatchBruteForce) {
  std::mt19937 rng(7);
  int unique = 0;
  for (int trial = 0; trial < 30; ++trial) {
    const int n = 4 + static_cast<int>(rng() % 7);
    const int stages = 2 + static_cast<int>(rng() % 3);
    std::vector<uint64_t> dense;
    for (int i = 0; i < n; ++i) dense.push_back((1 + rng() % 50) * kMiB);
    const ModelBytes m = bytes(dense, (1 + rng() % 20) * kMiB, (rng() % 100) * kMiB, (rng() % 100) * kMiB);
    std::vector<WorkerInfo> w;
    for (int s = 0; s < stages; ++s) w.push_back(worker(str_cat("w", s), 1e9, 64 * kGiB));
    std::vector<int> order(static_cast<size_t>(stages));
    std::iota(order.begin(), order.end(), 0);  // equal speeds: index order
    const ClusterPlan p = plan_cluster(m, config(n), w, {});
    ASSERT_EQ(p.pp, stages);
    ASSERT_EQ(p.assignments.size(), static_cast<size_t>(stages));
    for (int s = 0; s < stages; ++s) EXPECT_EQ(p.assignments[size_t(s)].worker, s);
    const BruteForce bf = brute_force(m, 1000, w, order, 0);
    EXPECT_NEAR(plan_worst(p, m, 1000, w), bf.best, bf.best * 1e-12) << "trial " << trial;
    if (bf.optima.size() == 1) {
      EXPECT_EQ(pairs(p.stages), pairs(bf.optima[0])) << "trial " << trial;
      ++unique;
    }
  }
  EXPECT_GT(unique, 20);  // the ranges themselves were checked in most trials
}

TEST(ClusterPlanBalance, TwiceAsFastWorkerGetsTwiceTheLayers) {
  const ModelBytes m = bytes(std::vector<uint64_t>(12, 100 * kMiB), 10 * kMiB);
  // Listed slow first: the fast one is sorted into stage 0.
  const std::vector<WorkerInfo> w = {worker("slow", 1e9, 64 * kGiB), worker("fast", 2e9, 64 * kGiB)};
  const ClusterPlan p = plan_cluster(m, config(12), w, {});
  const BruteForce bf = brute_force(m, 1000, w, {1, 0}, 0);
  ASSERT_EQ(bf.optima.size(), 1u);
  EXPECT_EQ(pairs(p.stages), pairs(bf.optima[0]));
  EXPECT_EQ(p.layers_spec(), "0:8,8:12");
  EXPECT_EQ(p.assignments[0].worker, 1);
  EXPECT_EQ(p.assignments[1].worker, 0);
  // 8 layers at 2 GB/s and 4 at 1 GB/s: 0.4 GB each way.
  const double stage = 4 * 120.0 * kMiB / 1e9;
  EXPECT_NEAR(p.assignments[0].seconds_per_token, stage, 1e-12);
  EXPECT_NEAR(p.assignments[1].seconds_per_token, stage, 1e-12);
  EXPECT_NEAR(p.predicted_tokens_per_s, 1 / (2 * stage), 1e-9);
  // Ties go to the earliest split, as in balance_layers: 5 equal layers on equal workers.
  const std::vector<WorkerInfo> equal = {worker("a", 1e9, 64 * kGiB), worker("b", 1e9, 64 * kGiB)};
  EXPECT_EQ(plan_cluster(bytes(std::vector<uint64_t>(5, kMiB), kMiB), config(5), equal, {}).layers_spec(), "0:2,2:5");
}

TEST(ClusterPlanMemory, RamLimitMovesTheSplitOffTheSpeedOptimum) {
  // 8 layers of 2 GiB (1 GiB dense + 8 x 128 MiB experts); worker b holds 3 of them (no drive).
  const ModelBytes m = bytes(std::vector<uint64_t>(8, kGiB), 128 * kMiB);
  const uint64_t reserve = kGiB;
  const std::vector<WorkerInfo> w = {worker("a", 1e9, 64 * kGiB), worker("b", 1e9, 6 * kGiB + reserve)};
  const std::vector<WorkerInfo> roomy = {w[0], worker("b", 1e9, 64 * kGiB)};
  EXPECT_EQ(pairs(brute_force(m, 1000, roomy, {0, 1}, 0).optima.at(0)), pairs({{0, 4}, {4, 8}}));
  const BruteForce bf = brute_force(m, 1000, w, {0, 1}, reserve);
  ASSERT_EQ(bf.optima.size(), 1u);
  PlanRequest r;
  r.ram_reserve = reserve;
  const ClusterPlan p = plan_cluster(m, config(8), w, r);
  EXPECT_EQ(pairs(p.stages), pairs(bf.optima[0]));
  EXPECT_EQ(p.layers_spec(), "0:5,5:8");
  EXPECT_EQ(p.assignments[1].resident_bytes, 6 * kGiB);
  EXPECT_FALSE(p.assignments[1].offload);

  // Random speeds and RAM on 3 workers against the constrained brute force.
  std::mt19937 rng(11);
  int unique = 0, refused = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const int n = 3 + static_cast<int>(rng() % 7);
    std::vector<uint64_t> dense;
    for (int i = 0; i < n; ++i) dense.push_back((1 + rng() % 8) * 256 * kMiB);
    const ModelBytes mt = bytes(dense, (rng() % 4) * 64 * kMiB, (rng() % 4) * 256 * kMiB, (rng() % 4) * 256 * kMiB);
    std::vector<WorkerInfo> wt;
    for (int s = 0; s < 3; ++s) wt.push_back(worker(str_cat("w", s), 1e9 * (1 + s), (1 + rng() % 12) * kGiB + reserve));
    const BruteForce bt = brute_force(mt, 1000, wt, {2, 1, 0}, reserve);  // fastest first
    bool infeasible = false;
    ClusterPlan pt;
    const std::string err = error_of([&] { pt = plan_cluster(mt, config(n), wt, r); }, &infeasible);
    if (bt.best == kInf) {
      EXPECT_TRUE(infeasible) << "trial " << trial << ": " << err;
      ++refused;
      continue;
    }
    ASSERT_EQ(err, "") << "trial " << trial;
    double worst = 0;
    for (const WorkerAssignment& a : pt.assignments) {
      EXPECT_FALSE(a.offload);
      worst = std::max(worst, ref_seconds(mt, 1000, wt[size_t(a.worker)], a.layers, reserve));
    }
    EXPECT_NEAR(worst, bt.best, bt.best * 1e-12) << "trial " << trial;
    if (bt.optima.size() == 1) {
      EXPECT_EQ(pairs(pt.stages), pairs(bt.optima[0])) << "trial " << trial;
      ++unique;
    }
  }
  EXPECT_GT(unique, 15);
  EXPECT_GT(refused, 3);  // and some draws fit nowhere
}

TEST(ClusterPlanOffload, ExpertsBeyondRamAreReadFromTheDrive) {
  // One worker, 4 MoE layers: 1 GiB dense + 8 x 256 MiB experts each, 512 MiB embedding and head.
  const ModelBytes m = bytes(std::vector<uint64_t>(4, kGiB), 256 * kMiB, 512 * kMiB, 512 * kMiB);
  const uint64_t reserve = kGiB, held = 5 * kGiB, experts = 8 * kGiB;
  PlanRequest r;
  r.ram_reserve = reserve;
  const double speed = 10e9, drive = 2e9;
  const ClusterPlan p =
      plan_cluster(m, config(4), std::vector{worker("w", speed, reserve + held + 3 * kGiB, drive)}, r);
  ASSERT_EQ(p.assignments.size(), 1u);
  const WorkerAssignment& a = p.assignments[0];
  EXPECT_TRUE(a.offload);
  EXPECT_EQ(a.expert_ram_budget, 3 * kGiB);
  EXPECT_EQ(a.resident_bytes, held + 3 * kGiB);
  const double read = 4.0 * (kGiB + 512 * kMiB) + 512.0 * kMiB / 1000 + 512.0 * kMiB;
  const double misses = (1 - 3.0 / 8) * 4 * 2 * 256.0 * kMiB;
  EXPECT_NEAR(a.seconds_per_token, read / speed + misses / drive, 1e-12);
  EXPECT_NEAR(p.predicted_tokens_per_s, 1 / a.seconds_per_token, 1e-9);

  // Everything fits: no offload, no budget.
  const ClusterPlan all =
      plan_cluster(m, config(4), std::vector{worker("w", speed, reserve + held + experts, drive)}, r);
  EXPECT_FALSE(all.assignments[0].offload);
  EXPECT_EQ(all.assignments[0].expert_ram_budget, 0u);
  EXPECT_EQ(all.assignments[0].resident_bytes, held + experts);

  // No drive to read from: refused, saying so.
  bool infeasible = false;
  std::string err =
      error_of([&] { plan_cluster(m, config(4), std::vector{worker("w", speed, reserve + held + 3 * kGiB, 0)}, r); },
               &infeasible);
  EXPECT_TRUE(infeasible) << err;
  EXPECT_NE(err.find("no drive bandwidth"), std::string::npos) << err;

  // One token's experts (2 of 8 per layer, 4 layers: 2 GiB) is the least budget.
  EXPECT_NO_THROW(plan_cluster(m, config(4), std::vector{worker("w", speed, reserve + held + 2 * kGiB, drive)}, r));
  err = error_of(
      [&] { plan_cluster(m, config(4), std::vector{worker("w", speed, reserve + held + 2 * kGiB - kMiB, drive)}, r); },
      &infeasible);
  EXPECT_TRUE(infeasible) << err;
  EXPECT_NE(err.find("2.00 GiB for one token's routed experts"), std::string::npos) << err;
}

TEST(ClusterPlanInfeasible, ModelLargerThanAllRamSaysTheNumbers) {
  // 8 dense layers of 4 GiB (32 GiB) on 15 + 9 GiB usable. The closest split is 0:5,5:8
  // (misses by 5 and 3 GiB); stage 0 then needs 20 GiB on w0, which has 15.
  ModelBytes m = bytes(std::vector<uint64_t>(8, 4 * kGiB), 0);
  PlanRequest r;
  r.ram_reserve = kGiB;
  const std::vector<WorkerInfo> w = {worker("w0", 1e9, 16 * kGiB), worker("w1", 1e9, 10 * kGiB)};
  bool infeasible = false;
  const std::string err = error_of([&] { plan_cluster(m, config(8, false), w, r); }, &infeasible);
  EXPECT_TRUE(infeasible) << err;
  for (const std::string& part : {gib(32 * kGiB) + " of dense weights", gib(16 * kGiB) + " and " + gib(10 * kGiB),
                                  gib(kGiB) + " kept free each", std::string("Closest split 0:5,5:8"),
                                  "stage 0 (layers 0:5) needs at least " + gib(20 * kGiB) +
                                      " on worker w0 (host host-w0), which has " + gib(15 * kGiB)})
    EXPECT_NE(err.find(part), std::string::npos) << "'" << part << "' not in: " << err;
}

TEST(ClusterPlanDegrees, AutoChoosesAPipelineOverEveryWorker) {
  const ModelBytes m = bytes(std::vector<uint64_t>(8, kMiB), kMiB);
  const std::vector<WorkerInfo> four(4, worker("w", 1e9, 64 * kGiB));
  const ClusterPlan p = plan_cluster(m, config(8), four, {});
  EXPECT_EQ(std::make_tuple(p.tp, p.pp, p.ep), std::make_tuple(1, 4, 1));
  EXPECT_EQ(p.stages.size(), 4u);
  const std::vector<WorkerInfo> nine(9, worker("w", 1e9, 64 * kGiB));
  EXPECT_NE(error_of([&] { plan_cluster(m, config(8), nine, {}); }).find("8 layers"), std::string::npos);
}

TEST(ClusterPlanDegrees, GivenDegreesFillTheRest) {
  const ModelBytes m = bytes(std::vector<uint64_t>(8, kMiB), kMiB);
  const std::vector<WorkerInfo> four(4, worker("w", 1e9, 64 * kGiB));
  auto degrees = [&](int tp, int pp, int ep) {
    PlanRequest r;
    r.tp = tp, r.pp = pp, r.ep = ep;
    const ClusterPlan p = plan_cluster(m, config(8), four, r);
    return std::make_tuple(p.tp, p.pp, p.ep);
  };
  EXPECT_EQ(degrees(2, 0, 0), std::make_tuple(2, 2, 1));
  EXPECT_EQ(degrees(0, 0, 4), std::make_tuple(1, 1, 4));
  EXPECT_EQ(degrees(0, 2, 0), std::make_tuple(2, 2, 1));
  EXPECT_EQ(degrees(0, 2, 2), std::make_tuple(1, 2, 2));
  EXPECT_EQ(degrees(1, 2, 2), std::make_tuple(1, 2, 2));
  EXPECT_NE(error_of([&] { degrees(3, 0, 0); }).find("4 ranks"), std::string::npos);
  EXPECT_NE(error_of([&] { degrees(2, 1, 1); }).find("4 ranks"), std::string::npos);
}

TEST(ClusterPlanDegrees, ModelMustSplitThatWay) {
  const ModelBytes m = bytes(std::vector<uint64_t>(8, kMiB), kMiB);
  auto err = [&](const ModelConfig& c, int workers, int tp, int pp, int ep) {
    PlanRequest r;
    r.tp = tp, r.pp = pp, r.ep = ep;
    bool infeasible = false;
    const std::string e = error_of(
        [&] { plan_cluster(m, c, std::vector(size_t(workers), worker("w", 1e9, 64 * kGiB)), r); }, &infeasible);
    EXPECT_FALSE(infeasible) << e;
    return e;
  };
  EXPECT_NE(err(config(8), 6, 3, 0, 0).find("8 attention heads"), std::string::npos);
  ModelConfig kv = config(8);
  kv.num_heads = 12, kv.num_kv_heads = 3;
  EXPECT_NE(err(kv, 2, 2, 1, 1).find("3 KV heads"), std::string::npos);
  ModelConfig wide = config(8);
  wide.expert_intermediate = 30;
  EXPECT_NE(err(wide, 4, 4, 1, 1).find("width 30"), std::string::npos);
  EXPECT_NE(err(config(8), 16, 1, 1, 16).find("the model has 8"), std::string::npos);
  ModelBytes two = bytes(std::vector<uint64_t>(2, kMiB), kMiB);
  bool infeasible = true;
  const std::string e = error_of(
      [&] {
        plan_cluster(two, config(2), std::vector(size_t(4), worker("w", 1e9, kGiB)), PlanRequest{1, 4, 1, 0});
      },
      &infeasible);
  EXPECT_NE(e.find("the model has 2"), std::string::npos) << e;
  EXPECT_FALSE(infeasible);
  // tp 8 over 4 KV heads replicates them: accepted.
  EXPECT_EQ(err(config(8), 8, 8, 1, 1), "");
}

TEST(ClusterPlanRanks, WorldRankFormulaAndStagesBySpeed) {
  // tp 2 x ep 2 x pp 2. Speeds (GB/s) by index; w5 has no compute rate, only its DRAM bandwidth.
  const std::vector<double> speed = {3, 8, 1, 6, 5, 2, 7, 4};
  std::vector<WorkerInfo> w;
  for (size_t i = 0; i < speed.size(); ++i) w.push_back(worker(str_cat("w", i), speed[i] * 1e9, 64 * kGiB));
  w[5].compute_bytes_per_s = 0;
  w[5].memory_bandwidth = 2e9;
  const ModelBytes m = bytes(std::vector<uint64_t>(8, 64 * kMiB), 4 * kMiB);
  PlanRequest r;
  r.tp = 2, r.ep = 2;
  const ClusterPlan p = plan_cluster(m, config(8), w, r);
  ASSERT_EQ(std::make_tuple(p.tp, p.pp, p.ep), std::make_tuple(2, 2, 2));
  // Fastest four (8, 7, 6, 5) form stage 0, in that order; the rest stage 1.
  const std::vector<int> by_rank = {1, 6, 3, 4, 7, 0, 5, 2};
  ASSERT_EQ(p.assignments.size(), 8u);
  double stage_max[2] = {0, 0};
  for (size_t k = 0; k < 8; ++k) {
    const WorkerAssignment& a = p.assignments[k];
    EXPECT_EQ(a.world_rank, static_cast<int>(k));
    EXPECT_EQ(a.world_rank, a.pp_rank * 4 + a.ep_rank * 2 + a.tp_rank);
    EXPECT_EQ(a.worker, by_rank[k]) << "rank " << k;
    EXPECT_EQ(a.pp_rank, static_cast<int>(k / 4));
    EXPECT_EQ(a.ep_rank, static_cast<int>(k % 4 / 2));
    EXPECT_EQ(a.tp_rank, static_cast<int>(k % 2));
    EXPECT_EQ(a.layers.begin, p.stages[size_t(a.pp_rank)].begin);
    // Its share: dense / tp, experts / (tp * ep).
    const int64_t layers = a.layers.size();
    EXPECT_EQ(a.resident_bytes, static_cast<uint64_t>(layers) * (32 * kMiB + 8 * kMiB)) << "rank " << k;
    stage_max[a.pp_rank] = std::max(stage_max[a.pp_rank], a.seconds_per_token);
  }
  // Each stage runs at its slowest member: 5 GB/s and 1 GB/s.
  const double per_layer = 32.0 * kMiB + 2 * kMiB;
  EXPECT_NEAR(stage_max[0], static_cast<double>(p.stages[0].size()) * per_layer / 5e9, 1e-12);
  EXPECT_NEAR(stage_max[1], static_cast<double>(p.stages[1].size()) * per_layer / 1e9, 1e-12);
  EXPECT_NEAR(p.predicted_tokens_per_s, 1 / (stage_max[0] + stage_max[1]), 1e-6);
}

TEST(ClusterPlanDescribe, OneLinePerWorker) {
  const ModelBytes m = bytes(std::vector<uint64_t>(4, kGiB), 256 * kMiB);
  // beta holds layers 2:4's 2 GiB dense and 3 of their 4 GiB of experts.
  const std::vector<WorkerInfo> w = {worker("alpha", 1e9, 64 * kGiB), worker("beta", 1e9, 5 * kGiB, 1e9)};
  const ClusterPlan p = plan_cluster(m, config(4), w, {});
  ASSERT_EQ(p.layers_spec(), "0:2,2:4");
  const std::string d = p.describe(w);
  EXPECT_EQ(std::count(d.begin(), d.end(), '\n'), 4) << d;  // summary, column names, two workers
  EXPECT_NE(d.find("alpha"), std::string::npos) << d;
  EXPECT_NE(d.find("host-beta"), std::string::npos) << d;
  EXPECT_TRUE(p.assignments[1].offload);
  EXPECT_NE(d.find("all"), std::string::npos) << d;          // alpha holds its experts
  EXPECT_NE(d.find(gib(3 * kGiB)), std::string::npos) << d;  // beta's expert budget
}

}  // namespace
}  // namespace moe::parallel
