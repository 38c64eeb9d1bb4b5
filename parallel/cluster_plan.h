// The coordinator's planner (`moe coordinator`, docs/coordinator.md): from the workers that
// registered (their memory and the rates they measured at start-up) and the model, which worker
// runs what: pipeline stages with layer ranges balanced by each stage's measured speed and
// memory (unequal ranges for unequal workers), tensor / expert groups inside a stage, and each
// worker's RAM budget for routed experts when its share does not fit (the rest is read from the
// drive). A request that cannot fit is refused with the numbers. Pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/engine/parallel_layout.h"
#include "runtime/model/config.h"

namespace moe::parallel {

struct WorkerDevice {
  std::string kind;  // "cpu" or "cuda"
  std::string name;  // "AMD EPYC 7B13", "NVIDIA H100 80GB HBM3"
  uint64_t memory_bytes = 0;
};

// What a worker reports when it registers. Rates are measured by the worker at start-up; 0 means
// unknown (not measured).
struct WorkerInfo {
  std::string id;     // unique per registration, chosen by the coordinator
  std::string host;   // host name
  int mpi_rank = -1;  // rank in its mpirun world, -1 when started by hand
  std::vector<WorkerDevice> devices;
  uint64_t ram_bytes = 0;          // host RAM available for weights
  double memory_bandwidth = 0;     // bytes/s: host DRAM read (the decode weight-streaming rate on a CPU)
  double drive_bandwidth = 0;      // bytes/s: reading the model directory's drive
  double link_bandwidth = 0;       // bytes/s: to the other workers (0: unknown)
  double link_latency = 0;         // seconds per message
  double compute_bytes_per_s = 0;  // weight bytes/s the decode kernels stream on this worker
  std::string data_address;        // host:port of its TCP data plane (started by hand); empty under mpirun
};

// What the model costs, in storage bytes (quantized weights at their size): per layer, what it
// holds and what one decoded token reads.
struct ModelBytes {
  std::vector<uint64_t> layer_dense;    // attention, norms, router, shared expert or dense MLP
  std::vector<uint64_t> layer_experts;  // every routed expert of the layer (0 for dense layers)
  std::vector<uint64_t> layer_token;    // what one decoded token reads in the layer (top-k experts)
  uint64_t expert_bytes = 0;            // one routed expert (the offload slot)
  int64_t top_k = 0;
  uint64_t first_extra = 0;  // embedding (first stage)
  uint64_t last_extra = 0;   // final norm + LM head (last stage)
  uint64_t last_token = 0;   // what one token reads of the last stage's extra
};

struct PlanRequest {
  int tp = 0, pp = 0, ep = 0;  // 0: chosen by the planner (--auto); all given: checked, not chosen
  uint64_t ram_reserve = 0;    // bytes each worker keeps free (KV cache, activations)
};

struct WorkerAssignment {
  int worker = 0;  // index into the workers passed to plan_cluster
  int pp_rank = 0, ep_rank = 0, tp_rank = 0;
  int world_rank = 0;              // ParallelLayout::rank()
  LayerRange layers;               // its stage's
  uint64_t resident_bytes = 0;     // weights it holds in RAM (its shard)
  uint64_t expert_ram_budget = 0;  // 0: every expert resident; else the RAM for its routed experts
  bool offload = false;            // routed experts beyond the budget are read from the drive
  double seconds_per_token = 0;    // predicted compute per token of its share
};

struct ClusterPlan {
  int tp = 1, pp = 1, ep = 1;
  std::vector<LayerRange> stages;
  std::vector<WorkerAssignment> assignments;  // by world rank
  double predicted_tokens_per_s = 0;          // one sequence, no overlap: 1 / sum of stage times
  std::string layers_spec() const;            // "0:12,12:32"
  // Human-readable table: one line per worker.
  std::string describe(std::span<const WorkerInfo> workers) const;
};

class InfeasiblePlan : public Error {
 public:
  using Error::Error;
};

}  // namespace moe::parallel
