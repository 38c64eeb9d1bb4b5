// A cost model of parallel decode, calibrated on measured runs (moe_bench_parallel) and projected
// to more ranks over named links (moe_bench_project). Pure functions.
//
// Decode reads every active weight once per token. A rank streams its bytes at `rank_rate`
// bytes/s when it runs alone on its memory and at `shared_rate` bytes/s when every rank of a host
// streams at once (ranks share the host's memory bandwidth; on GPUs each has its own, so the two
// are equal). An all-reduce of b bytes over N ranks costs 2 ceil(log2 N) alpha (the latency of a
// tree / recursive-doubling exchange, what NCCL and MPI use for small messages) plus the ring's
// bandwidth term 2 (N - 1) b / (N beta).
//   single:  t = B / rank_rate
//   TP N:    t = (B_sharded / N + B_lm / N + B_repl) / shared_rate + (2 L + 1) allreduce(N, 4 H)  [the LM head's gather
//   counted as one] EP N:    t = (B_attn + B_lm + B_repl + B_experts / N) / shared_rate + L allreduce(N, 4 H) PP N, S
//   sequences in flight: a stage holds B / N; with S >= N every stage is busy (shared
//            rate) and tokens/s = 1 / t_stage; with S < N, S / (N t_stage) at the alone rate
//            t_stage = B / N / rate + alpha + 4 H / beta.
// Calibration (calibrate()): rank_rate from the 1-rank run; shared_rate from the pipeline run
// with every stage busy (PP 2, 2 in flight: no collectives, so it isolates the shared
// bandwidth); alpha from the TP run's measured collective time per call (the all-reduces of
// 4 KB are latency-bound; beta is taken as rank_rate). Every other measured point is then a
// prediction, reported with its error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe::parallel {

struct DecodeBytes {
  int64_t layers = 0, hidden = 0;
  double total = 0;       // bytes one token reads
  double attention = 0;   // q/k/v/o (TP splits them)
  double experts = 0;     // top-k routed experts (TP splits their width, EP their count)
  double lm_head = 0;     // TP splits it by vocabulary
  double replicated = 0;  // router, norms, embedding row
};

struct Device {
  std::string name;
  double rank_rate = 0;    // bytes/s, one rank alone
  double shared_rate = 0;  // bytes/s per rank when all stream
};

struct Link {
  std::string name;
  double alpha = 0;  // s per message step
  double beta = 0;   // bytes/s
};

enum class Mode { kSingle, kTensor, kExpert, kPipeline };

double allreduce_seconds(const Link& l, int ranks, double bytes);
// Tokens/s of `mode` over `ranks` ranks (`in_flight` sequences for the pipeline).
double tokens_per_second(const DecodeBytes& m, const Device& d, const Link& l, Mode mode, int ranks, int in_flight);

struct Measured {
  Mode mode = Mode::kSingle;
  int ranks = 1, in_flight = 1;
  double tokens_per_second = 0;
  double comm_seconds_per_token = 0, comm_calls_per_token = 0;
};

struct Calibration {
  Device device;
  Link link;
};
// Throws moe::Error when a run it needs (single 1x1, pp 2 with 2 in flight, tp 2) is missing.
Calibration calibrate(const DecodeBytes& m, const std::vector<Measured>& runs);

}  // namespace moe::parallel
